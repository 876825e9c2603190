/**
 * One forwarding attempt: the consumer's body, byte for byte, to one leased node's endpoint of the
 * request's route (proxy-routes.ts), with the link token. It ends exactly once: rejected with `AttemptFailed` while nothing reached the consumer
 * (connection error, 5xx, 401/403 on the link token, no headers within `firstByteTimeoutMs`: a
 * failure for the node's breaker; a 429: a cooldown), so that another node can be tried; or
 * resolved with the completed request once the response is complete, passed through (a consumer
 * 4xx, neutral for the node), or ended mid-stream.
 *
 * A 200 goes to one of the two relays, both closures of the attempt: the whole relay (read in
 * full from the node, answered in one write with its length; a node that breaks off before the end
 * has delivered nothing, so the attempt fails and another node may be tried) and the streamed
 * relay (passed event by event as it arrives, see sse-relay.ts, and counted; once it has started,
 * a failure ends the consumer's stream with an error event and counts against the node, a consumer
 * who leaves is neutral, and the consumer pays only for the content events delivered; what counts
 * as content, and whether the `[DONE]` is forwarded, is the route's row). They stay
 * closures on purpose: split into module functions over a shared attempt object, the same code
 * cost ~25 µs more gateway CPU per request (bench/gateway-overhead.mjs, c=64: 137–143 µs against
 * 113 µs, measured side by side with --baseline).
 */
import {
  type Agent,
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import { RECEIPT_HEADER, REQUEST_ID_HEADER } from "@gbt/protocol";
import type { CompletedRequest } from "../billing/receipt-settler.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import type { Lease } from "../pool/lease.js";
import type { InstanceLink } from "../pool/pool-instance.js";
import type { ParsedRequest } from "./admission.js";
import type { ProxyRoute } from "./proxy-routes.js";
import { SseRelay } from "./sse-relay.js";

const EMPTY_TAIL = Buffer.alloc(0);

/** Why a forwarding attempt failed before anything reached the consumer. */
export class AttemptFailed extends Error {
  constructor(
    /** `neutral`: the consumer left; neither the node's failure nor worth another node. */
    readonly outcome: "failure" | "cooldown" | "neutral",
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

/** Where a node's endpoint of a route is: parsed once per link and route, not once per request. */
interface UpstreamTarget {
  /** node:http's or node:https's request, with the link transport's agent (its URL policy at connect time). */
  request: (options: RequestOptions) => ClientRequest;
  agent: Agent;
  protocol: string;
  hostname: string;
  port: string;
  /** The Host header node:http would send (it sends none of its own with array headers). */
  host: string;
  path: string;
}

const targetsByRoute = new WeakMap<ProxyRoute, WeakMap<InstanceLink, UpstreamTarget>>();

function targetOf(link: InstanceLink, route: ProxyRoute): UpstreamTarget {
  let targets = targetsByRoute.get(route);
  if (targets === undefined) {
    targets = new WeakMap();
    targetsByRoute.set(route, targets);
  }
  let target = targets.get(link);
  if (target === undefined) {
    const url = new URL(route.nodePath, link.url);
    const https = url.protocol === "https:";
    target = {
      request: https ? httpsRequest : httpRequest,
      agent: https ? link.transport.https : link.transport.http,
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

/** One attempt on one node. Resolves when the response is complete (or ended mid-stream). */
export function forwardAttempt(
  context: AttemptContext,
  res: ServerResponse,
  raw: Buffer,
  chat: ParsedRequest,
  lease: Lease,
  link: InstanceLink,
  requestId: string,
  started: number,
): Promise<CompletedRequest> {
  const { routing, metrics } = context;
  return new Promise<CompletedRequest>((resolve, reject) => {
    const route = chat.route;
    const target = targetOf(link, route);
    const sentAt = performance.now();
    let settled = false;
    let started2 = false; // bytes went to the consumer
    const upstream = target.request({
      agent: target.agent,
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
    const fail = (outcome: AttemptFailed["outcome"], reason: string, retryAfterMs?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(firstByteTimer);
      // A lost outbound link is one event, already known to the pool: not a failure per request.
      const forNode = outcome === "failure" && link.transport.lost === true ? "neutral" : outcome;
      lease.release(forNode, retryAfterMs !== undefined ? { retryAfterMs } : undefined);
      upstream.destroy();
      reject(new AttemptFailed(outcome, reason, retryAfterMs));
    };
    const firstByteTimer = setTimeout(
      () => fail("failure", `no response within ${routing.firstByteTimeoutMs} ms`),
      routing.firstByteTimeoutMs,
    );
    const onConsumerGone = () => {
      if (res.writableFinished) return;
      // The consumer left (cancel, disconnect, its own timeout) before anything was sent: the
      // node's work is aborted and its lease released as neutral; it is never the node's failure.
      if (!started2) fail("neutral", "the consumer left before the node answered");
      upstream.destroy();
    };
    res.on("close", onConsumerGone);
    upstream.on("error", (error) => {
      if (!started2) fail("failure", (error as NodeJS.ErrnoException).code ?? error.message);
    });
    upstream.on("response", (up) => {
      clearTimeout(firstByteTimer);
      const status = up.statusCode ?? 502;
      if (status === 429) {
        const after = Number(up.headers["retry-after"]);
        up.resume();
        fail(
          "cooldown",
          "node at capacity (429)",
          Number.isFinite(after) && after > 0 ? after * 1000 : undefined,
        );
        return;
      }
      // A redirect is never followed (nor passed on: its Location is the node's to choose).
      if (
        status >= 500 ||
        status === 401 ||
        status === 403 ||
        status < 200 ||
        (status >= 300 && status < 400)
      ) {
        up.resume();
        fail("failure", `node answered ${status}`);
        return;
      }
      const upstreamHeadersAt = performance.now();
      // The gateway's own time: everything before the request left for the node.
      const gatewayMs = sentAt - started;
      metrics.gatewayTime.observe(gatewayMs / 1000);
      if (status !== 200) {
        // The consumer's own mistake (400, 404, 413…): passed through, neutral for the node, no charge.
        settled = true;
        started2 = true;
        lease.release("neutral", { rejected: status >= 400 && status < 500 });
        res.writeHead(status, {
          "content-type": up.headers["content-type"] ?? "application/json",
          "x-request-id": requestId,
          "x-gbt-gateway-ms": gatewayMs.toFixed(3),
        });
        up.pipe(res);
        // Resolved once whatever way the body ends, cut or whole, so that the hold is released.
        let ended = false;
        const passedThrough = (complete: boolean) => {
          if (ended) return;
          ended = true;
          res.off("close", onConsumerGone);
          if (!complete) res.destroy();
          resolve(completedOf(requestId, chat, lease, sentAt, 0, 0, null, "rejected"));
        };
        up.on("end", () => passedThrough(up.complete));
        up.on("error", () => passedThrough(false));
        up.on("close", () => passedThrough(false));
        return;
      }
      if (chat.stream) relayStream(up, upstreamHeadersAt, gatewayMs);
      else relayWhole(up, gatewayMs);
    });

    function relayStream(up: IncomingMessage, headersAt: number, gatewayMs: number): void {
      started2 = true;
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-request-id": requestId,
        "x-gbt-gateway-ms": gatewayMs.toFixed(3),
      });
      const relay = new SseRelay(routing.maxEventBytes, route.sse);
      /** The stream's end ([DONE]), sent once the request is handed over. */
      let heldBack: Buffer | null = null;
      let firstChunkAt = 0;
      let lastChunkAt = 0;
      // Refreshed by whole events only: a node dribbling bytes of an event never ends does not keep it alive.
      const stall = setTimeout(() => {
        up.destroy(new Error(`no event for ${routing.stallTimeoutMs} ms`));
      }, routing.stallTimeoutMs);
      const deadline = setTimeout(() => {
        up.destroy(new Error(`the stream passed ${routing.streamTimeoutMs} ms`));
      }, routing.streamTimeoutMs);
      // A slow consumer holds the node's stream back (not the gateway's memory); meanwhile the stall clock stops.
      const drained = () => {
        stall.refresh();
        up.resume();
      };
      up.on("data", (chunk: Buffer) => {
        const out = relay.push(chunk);
        if (out === null) {
          up.destroy(new Error(`an event passed ${routing.maxEventBytes} bytes`));
          return;
        }
        if (out.length > 0) {
          stall.refresh();
          lastChunkAt = performance.now();
          if (firstChunkAt === 0) firstChunkAt = lastChunkAt;
          if (relay.done) {
            // The [DONE] is held back until the request is journalled (the caller's hand-over):
            // the consumer never sees a stream complete that a crash could lose. The request is
            // complete now, not when the node's connection gets round to ending. A route whose
            // consumers expect no [DONE] (responses) gets only the end of the stream then.
            const at = relay.doneAt;
            heldBack = at >= 0 && route.forwardsDone ? out.subarray(at) : EMPTY_TAIL;
            if (at > 0) res.write(out.subarray(0, at));
            finish(null);
            return;
          }
          if (!res.write(out)) {
            clearTimeout(stall);
            up.pause();
            res.once("drain", drained);
          }
        }
      });
      const finish = (error: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(stall);
        clearTimeout(deadline);
        res.off("close", onConsumerGone);
        res.off("drain", drained);
        const consumerGone = res.destroyed && !res.writableFinished;
        const complete = relay.done && error === null;
        // Only events with delivered text count (an empty event bills nothing).
        const contentEvents = relay.contentEvents;
        const generationMs = lastChunkAt > firstChunkAt ? lastChunkAt - firstChunkAt : 0;
        if (complete) {
          lease.release("success", { outputTokens: contentEvents, generationMs });
          if (heldBack === null) res.end();
        } else if (consumerGone) {
          lease.release("neutral");
        } else {
          lease.release(link.transport.lost === true ? "neutral" : "failure");
          metrics.upstreamFailures.inc({ outcome: "mid_stream" });
          res.end(
            route.failureEvent(
              `The node serving this request failed mid-stream (${error?.message ?? "stream ended early"}); you are charged only for the tokens delivered.`,
            ),
          );
        }
        const completed = completedOf(
          requestId,
          chat,
          lease,
          headersAt,
          contentEvents,
          generationMs,
          relay.receipt,
          complete ? "complete" : consumerGone ? "cancelled" : "failed",
        );
        const tail = heldBack;
        if (complete && tail !== null) completed.deliver = () => res.end(tail);
        resolve(completed);
      };
      up.on("end", () => finish(relay.pending > 0 ? new Error("stream cut inside an event") : null));
      up.on("error", (error) => finish(error));
      up.on("aborted", () => finish(new Error("connection to the node lost")));
      up.on("close", () => finish(relay.done ? null : new Error("connection to the node lost")));
    }

    function relayWhole(up: IncomingMessage, gatewayMs: number): void {
      const declared = Number(up.headers["content-length"]);
      if (declared > routing.maxResponseBytes) {
        fail("failure", `the answer declares ${declared} bytes (cap ${routing.maxResponseBytes})`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      // After the headers, the whole answer has a deadline too: a node cannot hold a lease and a hold by stalling.
      const deadline = setTimeout(
        () => fail("failure", `no complete answer within ${routing.responseTimeoutMs} ms`),
        routing.responseTimeoutMs,
      );
      up.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > routing.maxResponseBytes)
          fail("failure", `the answer passed ${routing.maxResponseBytes} bytes`);
        else chunks.push(chunk);
      });
      up.on("error", (error) => fail("failure", error.message));
      up.on("close", () => {
        clearTimeout(deadline);
        fail("failure", "connection to the node lost");
      });
      up.on("end", () => {
        clearTimeout(deadline);
        if (settled) return;
        if (!up.complete) {
          fail("failure", "connection to the node lost");
          return;
        }
        settled = true;
        started2 = true;
        res.off("close", onConsumerGone);
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        const receiptHeader = up.headers[RECEIPT_HEADER];
        const receipt =
          typeof receiptHeader === "string" ? Buffer.from(receiptHeader, "base64url").toString("utf8") : null;
        const completed = completedOf(requestId, chat, lease, sentAt, 0, 0, receipt, "complete");
        completed.wholeBody = body;
        // Answered once the request is journalled (the caller's hand-over): a crash between the two
        // would otherwise lose a request the consumer has in full.
        completed.deliver = () => {
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": body.length,
            "x-request-id": requestId,
            "x-gbt-gateway-ms": gatewayMs.toFixed(3),
          });
          res.end(body);
        };
        lease.release("success");
        resolve(completed);
      });
    }

    upstream.end(raw);
  });
}

function completedOf(
  requestId: string,
  chat: ParsedRequest,
  lease: Lease,
  since: number,
  contentEvents: number,
  generationMs: number,
  receipt: string | null,
  state: CompletedRequest["state"],
): CompletedRequest {
  return {
    requestId,
    route: chat.route.name,
    model: chat.model,
    stream: chat.stream,
    instance: lease.instance,
    state,
    relayedCompletionTokens: contentEvents,
    generationMs,
    durationMs: performance.now() - since,
    receipt,
    wholeBody: null,
    maxTokens: chat.maxTokens,
    promptBound: 0,
    accountId: "",
    keyId: "",
    price: { inputPerMillion: 0, outputPerMillion: 0 },
  };
}
