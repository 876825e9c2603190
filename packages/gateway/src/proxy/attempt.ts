/**
 * One forwarding attempt: the consumer's body, byte for byte, to one leased node, with the link
 * token. It ends exactly once: rejected with `AttemptFailed` while nothing reached the consumer
 * (connection error, 5xx, 401/403 on the link token, no headers within `firstByteTimeoutMs`: a
 * failure for the node's breaker; a 429: a cooldown), so that another node can be tried; or
 * resolved with the completed request once the response is complete, passed through (a consumer
 * 4xx, neutral for the node), or ended mid-stream. A 200 goes to the whole relay (whole-relay.ts)
 * or, for `stream: true`, to the streamed relay (stream-relay.ts).
 */
import { Agent, type ClientRequest, request as httpRequest, type ServerResponse } from "node:http";
import { nodePaths, REQUEST_ID_HEADER } from "@gbt/protocol";
import type { CompletedRequest } from "../billing/receipt-settler.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import type { Lease } from "../pool/lease.js";
import type { InstanceLink } from "../pool/pool-instance.js";
import type { ParsedChat } from "./admission.js";
import { relayStream } from "./stream-relay.js";
import { relayWhole } from "./whole-relay.js";

/** Why a forwarding attempt failed before anything reached the consumer. */
export class AttemptFailed extends Error {
  constructor(
    readonly outcome: "failure" | "cooldown",
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface AttemptContext {
  routing: GatewayConfig["routing"];
  metrics: GatewayMetrics;
}

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, keepAliveMsecs: 10_000 });

/** Where a node's chat endpoint is: parsed once per link, not once per request. */
interface UpstreamTarget {
  protocol: string;
  hostname: string;
  port: string;
  /** The Host header node:http would send (it sends none of its own with array headers). */
  host: string;
  path: string;
}

const targets = new WeakMap<InstanceLink, UpstreamTarget>();

function targetOf(link: InstanceLink): UpstreamTarget {
  let target = targets.get(link);
  if (target === undefined) {
    const url = new URL(nodePaths.chatCompletions, link.url);
    target = {
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port,
      host: url.host,
      path: url.pathname,
    };
    targets.set(link, target);
  }
  return target;
}

/** The state of one attempt that the attempt and the relay finishing it share. */
export class Attempt {
  /** Whether the attempt has ended (failed, or handed its outcome to `complete`). */
  done = false;
  /** Whether bytes went to the consumer: from then on, a failure can no longer move to another node. */
  responded = false;
  readonly onConsumerGone: () => void;
  readonly #resolve: (completed: CompletedRequest) => void;
  readonly #reject: (error: AttemptFailed) => void;
  #firstByteTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly context: AttemptContext,
    readonly res: ServerResponse,
    readonly upstream: ClientRequest,
    readonly chat: ParsedChat,
    readonly lease: Lease,
    readonly requestId: string,
    /** performance.now() when the request left for the node. */
    readonly sentAt: number,
    resolve: (completed: CompletedRequest) => void,
    reject: (error: AttemptFailed) => void,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.onConsumerGone = () => {
      if (!res.writableFinished) upstream.destroy();
    };
  }

  startFirstByteTimer(): void {
    const ms = this.context.routing.firstByteTimeoutMs;
    this.#firstByteTimer = setTimeout(() => this.fail("failure", `no response within ${ms} ms`), ms);
  }

  clearFirstByteTimer(): void {
    clearTimeout(this.#firstByteTimer);
  }

  /** Ends the attempt before the first byte: the lease records the outcome, the caller may retry. */
  fail(outcome: "failure" | "cooldown", reason: string, retryAfterMs?: number): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.#firstByteTimer);
    this.lease.release(outcome, retryAfterMs !== undefined ? { retryAfterMs } : undefined);
    this.upstream.destroy();
    this.#reject(new AttemptFailed(outcome, reason, retryAfterMs));
  }

  /** Hands the finished request back (the relay has released the lease and answered the consumer). */
  complete(completed: CompletedRequest): void {
    this.#resolve(completed);
  }

  /** The completed request as the settler takes it; the proxy fills in who pays. */
  completed(
    since: number,
    contentEvents: number,
    generationMs: number,
    receipt: string | null,
    state: CompletedRequest["state"],
  ): CompletedRequest {
    return {
      requestId: this.requestId,
      model: this.chat.model,
      stream: this.chat.stream,
      instance: this.lease.instance,
      state,
      relayedCompletionTokens: contentEvents,
      generationMs,
      durationMs: performance.now() - since,
      receipt,
      wholeBody: null,
      maxTokens: this.chat.maxTokens,
      promptBound: 0,
      accountId: "",
      keyId: "",
      price: { inputPerMillion: 0, outputPerMillion: 0 },
    };
  }
}

/** One attempt on one node. Resolves when the response is complete (or ended mid-stream). */
export function forwardAttempt(
  context: AttemptContext,
  res: ServerResponse,
  raw: Buffer,
  chat: ParsedChat,
  lease: Lease,
  link: InstanceLink,
  requestId: string,
  started: number,
): Promise<CompletedRequest> {
  return new Promise<CompletedRequest>((resolve, reject) => {
    const target = targetOf(link);
    const sentAt = performance.now();
    const upstream = httpRequest({
      agent,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      method: "POST",
      // As an array, node:http writes the headers as they are instead of one setHeader each.
      headers: [
        "host",
        target.host,
        "content-type",
        "application/json",
        "content-length",
        String(raw.length),
        "authorization",
        link.authorization,
        REQUEST_ID_HEADER,
        requestId,
      ],
    });
    const attempt = new Attempt(context, res, upstream, chat, lease, requestId, sentAt, resolve, reject);
    attempt.startFirstByteTimer();
    res.on("close", attempt.onConsumerGone);
    upstream.on("error", (error) => {
      if (!attempt.responded) attempt.fail("failure", (error as NodeJS.ErrnoException).code ?? error.message);
    });
    upstream.on("response", (up) => {
      attempt.clearFirstByteTimer();
      const status = up.statusCode ?? 502;
      if (status === 429) {
        const after = Number(up.headers["retry-after"]);
        up.resume();
        attempt.fail(
          "cooldown",
          "node at capacity (429)",
          Number.isFinite(after) && after > 0 ? after * 1000 : undefined,
        );
        return;
      }
      if (status >= 500 || status === 401 || status === 403) {
        up.resume();
        attempt.fail("failure", `node answered ${status}`);
        return;
      }
      const upstreamHeadersAt = performance.now();
      // The gateway's own time: everything before the request left for the node.
      const gatewayMs = sentAt - started;
      context.metrics.gatewayTime.observe(gatewayMs / 1000);
      if (status !== 200) {
        // The consumer's own mistake (400, 404, 413…): passed through, neutral for the node, no charge.
        attempt.done = true;
        attempt.responded = true;
        lease.release("neutral");
        res.writeHead(status, {
          "content-type": up.headers["content-type"] ?? "application/json",
          "x-request-id": requestId,
          "x-gbt-gateway-ms": gatewayMs.toFixed(3),
        });
        up.pipe(res);
        up.on("end", () => {
          res.off("close", attempt.onConsumerGone);
          attempt.complete(attempt.completed(sentAt, 0, 0, null, "rejected"));
        });
        up.on("error", () => res.destroy());
        return;
      }
      if (chat.stream) relayStream(attempt, up, upstreamHeadersAt, gatewayMs);
      else relayWhole(attempt, up, gatewayMs);
    });
    upstream.end(raw);
  });
}
