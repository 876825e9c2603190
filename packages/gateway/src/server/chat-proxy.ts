/**
 * `POST /v1/chat/completions` through the pool. Before the first byte the request path does only
 * what it must, all in memory: the API key (cached hash lookup), one JSON.parse of the body (model,
 * stream, max_tokens), a credit hold, a routing pick. The body is forwarded byte for byte; streams
 * are relayed chunk by chunk. Signature checks, the ledger write and logging happen after the
 * response, in batches (see receipt-settler.ts).
 *
 * Failure rules: a node that fails before the first byte (connection error, 5xx, 401/403 on the
 * link token, no headers within `firstByteTimeoutMs`) counts as a failure for its breaker and the
 * request moves to another candidate (at most `maxRetries` more); a node's 429 is a cooldown and
 * also moves on; any other 4xx is the consumer's problem (neutral) and goes back as it is. Once
 * the stream has started, a failure (connection lost, no chunk for `stallTimeoutMs`) ends the
 * consumer's stream with an error event, and the consumer pays only for the tokens delivered.
 */
import { randomBytes } from "node:crypto";
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { HttpError, isGbtError, RECEIPT_HEADER, REQUEST_ID_HEADER, readBody } from "@gbt/protocol";
import type { Logger } from "pino";
import type { GatewayConfig } from "../gateway-config.js";
import type { AccountStore } from "../ledger/accounts.js";
import { costMicro, type ModelPrice, priceFor } from "../ledger/pricing.js";
import type { CreditHold, CreditReservations } from "../ledger/reservations.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { Lease } from "../pool/lease.js";
import type { InstanceLink } from "../pool/pool-instance.js";
import type { GatewayMetrics } from "./gateway-metrics.js";
import type { CompletedRequest, ReceiptSettler } from "./receipt-settler.js";
import { SseRelay } from "./sse-relay.js";

export interface ChatProxyDependencies {
  config: GatewayConfig;
  accounts: AccountStore;
  reservations: CreditReservations;
  pool: InstancePool;
  settler: ReceiptSettler;
  metrics: GatewayMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Trust tiers and redundant sampling (the verification extension); absent, every node is `community`. */
  trust?: RequestTrust;
}

/** The header a consumer sets to route only to nodes of at least this trust tier. */
export const MIN_TIER_HEADER = "x-gbt-min-tier";

/** A finished, non-streamed request as the sampler sees it (after the consumer has its answer). */
export interface ObservedCompletion {
  requestId: string;
  model: string;
  instanceId: string;
  /** The request body as the consumer sent it. */
  body: Buffer;
  /** The node's whole response body. */
  response: Buffer;
}

/** What the proxy asks of the verification extension (see src/verification). */
export interface RequestTrust {
  /** The rank of a tier name (community 0, verified 1, attested 2); undefined for an unknown name. */
  rank(tier: string): number | undefined;
  /** The rank of an instance's current tier. */
  instanceRank(instanceId: string): number;
  /** The account's configured minimum tier, if any. */
  minTierFor(accountId: string): string | null;
  /** Offered every complete non-streamed response; samples some and replays them elsewhere. */
  observe(completion: ObservedCompletion): void;
  /** The trust view shown in `GET /v1/gateway/nodes`. */
  nodeView(instanceId: string): unknown;
  /** The payout multiplier an instance's reputation earns (1 = full; at least 0.5). */
  payoutFactor(instanceId: string): number;
}

const TIER_NAMES = ["community", "verified", "attested"];

interface ParsedChat {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
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
    const url = new URL("/v1/chat/completions", link.url);
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

/** Request ids are 12 random bytes; drawn from a pool so that most requests make no RNG call. */
const ID_BYTES = 12;
let idPool = Buffer.alloc(0);
let idOffset = 0;

function newRequestId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 256);
    idOffset = 0;
  }
  const id = idPool.toString("base64url", idOffset, idOffset + ID_BYTES);
  idOffset += ID_BYTES;
  return `gw-${id}`;
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined || header.length < 8) return undefined;
  if (header.charCodeAt(6) !== 0x20 || header.slice(0, 6).toLowerCase() !== "bearer") return undefined;
  return header.slice(7).trim();
}

const invalid = (message: string, param: string | null) => new HttpError("invalid_value", message, param);

/** The few fields the gateway needs; the node validates the rest (its 400 comes back as it is). */
function parseChat(raw: Buffer, defaultMaxTokens: number): ParsedChat {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new HttpError("invalid_json", "The request body is not valid JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("The request body must be a JSON object.", null);
  }
  const b = body as Record<string, unknown>;
  const model = b.model;
  if (typeof model !== "string" || model.length === 0 || model.length > 256) {
    throw invalid("`model` must be a non-empty string (see GET /v1/models).", "model");
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw invalid("`messages` must be a non-empty array.", "messages");
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") {
    throw invalid("`stream` must be a boolean.", "stream");
  }
  const limit = b.max_completion_tokens ?? b.max_tokens;
  if (limit !== undefined && limit !== null && !(Number.isInteger(limit) && (limit as number) >= 1)) {
    throw invalid("`max_tokens` must be a positive integer.", "max_tokens");
  }
  const options = b.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    model,
    stream: b.stream === true,
    includeUsage: b.stream === true && options?.include_usage === true,
    maxTokens: typeof limit === "number" ? limit : defaultMaxTokens,
  };
}

/**
 * The request's minimum tier rank: the larger of the account's setting and the `x-gbt-min-tier`
 * header (which can only raise it). An unknown tier name is the consumer's mistake (400).
 */
function minimumTierRank(req: IncomingMessage, accountId: string, trust: RequestTrust | undefined): number {
  const header = req.headers[MIN_TIER_HEADER];
  const rankOf = (tier: string) => trust?.rank(tier) ?? TIER_NAMES.indexOf(tier);
  let rank = 0;
  if (header !== undefined) {
    const value = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase() ?? "";
    const given = rankOf(value);
    if (given === undefined || given < 0) {
      req.resume();
      throw new HttpError(
        "invalid_value",
        `${MIN_TIER_HEADER} must be one of ${TIER_NAMES.join(", ")}; got "${value.slice(0, 32)}".`,
        MIN_TIER_HEADER,
      );
    }
    rank = given;
  }
  const account = trust?.minTierFor(accountId);
  if (account !== null && account !== undefined) rank = Math.max(rank, rankOf(account) ?? 0);
  return rank;
}

/** Why a forwarding attempt failed before anything reached the consumer. */
class AttemptFailed extends Error {
  constructor(
    readonly outcome: "failure" | "cooldown",
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export function createChatProxy(deps: ChatProxyDependencies) {
  const { config, accounts, reservations, pool, settler, metrics, logger, trust } = deps;
  const routing = config.routing;
  const capacity = new CapacityQueue(routing.maxQueued);

  async function handle(req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    const key = bearerToken(req);
    const principal = key === undefined ? null : accounts.authenticate(key);
    if (principal === null) {
      req.resume();
      throw new HttpError(
        "invalid_api_key",
        "Missing or invalid API key (Authorization: Bearer gbt_gk_…).",
        null,
        { "www-authenticate": "Bearer" },
      );
    }
    const minRank = minimumTierRank(req, principal.accountId, trust);
    const admit =
      minRank > 0
        ? (instance: { id: string }) => trust !== undefined && trust.instanceRank(instance.id) >= minRank
        : undefined;
    const raw = await readBody(req, deps.maxBodyBytes);
    const chat = parseChat(raw, config.defaultMaxTokens);
    let price: ModelPrice;
    try {
      price = priceFor(config.prices, chat.model);
    } catch {
      throw new HttpError("model_not_found", `Model ${chat.model} has no price here.`, "model");
    }
    // A prompt token is at least one byte of the body, so the body size bounds the prompt.
    const reserve = costMicro(price, raw.length, chat.maxTokens);
    let hold: CreditHold;
    try {
      hold = reservations.reserve(principal.accountId, reserve);
    } catch (error) {
      if (isGbtError(error) && error.code === "INSUFFICIENT_FUNDS") {
        throw new HttpError(
          "insufficient_credits",
          `${error.message} Lower max_tokens or add credits to the account.`,
        );
      }
      throw error;
    }
    const requestId = newRequestId();
    const tried: string[] = [];
    const queueDeadline = performance.now() + routing.queueTimeoutMs;
    let handedOver = false;
    try {
      for (let attempt = 0; ; attempt++) {
        const picked = pool.lease(chat.model, admit ? { exclude: tried, admit } : { exclude: tried });
        if (picked.lease === null) {
          if (picked.reason === "unknown_model") {
            throw new HttpError("model_not_found", picked.error.message, "model");
          }
          const counts = picked.counts;
          if (counts.belowTier > 0 && counts.instances - counts.stale - counts.belowTier <= 0) {
            throw new HttpError(
              "tier_unavailable",
              `No active node serving ${chat.model} meets the minimum trust tier ${TIER_NAMES[minRank] ?? minRank} (${counts.belowTier} below it). Retry later, or ask for a lower tier (${MIN_TIER_HEADER}).`,
              null,
              { "retry-after": "30" },
            );
          }
          // Every candidate is at capacity: wait in line for a slot rather than fail at once.
          if (counts.full > 0 && !res.destroyed && (await capacity.wait(queueDeadline))) {
            attempt -= 1;
            continue;
          }
          throw new HttpError(
            tried.length > 0 ? "upstream_failed" : "no_capacity",
            tried.length > 0
              ? `Every node tried for ${chat.model} failed (${tried.length}); no other candidate. ${picked.error.message}`
              : picked.error.message,
            null,
            { "retry-after": "1" },
          );
        }
        const { lease, link } = picked;
        try {
          const completed = await forward(res, raw, chat, lease, link, requestId, started);
          completed.accountId = principal.accountId;
          completed.keyId = principal.keyId;
          completed.price = price;
          completed.promptBound = raw.length;
          handedOver = true;
          if (trust !== undefined && completed.state === "complete" && completed.wholeBody !== null) {
            trust.observe({
              requestId,
              model: chat.model,
              instanceId: lease.instance.id,
              body: raw,
              response: completed.wholeBody,
            });
          }
          settler.submit(completed, hold);
          return;
        } catch (error) {
          if (!(error instanceof AttemptFailed)) throw error;
          metrics.upstreamFailures.inc({ outcome: error.outcome });
          tried.push(lease.instance.id);
          logger.warn(
            { requestId, instance: lease.instance.id, outcome: error.outcome, reason: error.message },
            "node attempt failed before the first byte",
          );
          if (attempt >= routing.maxRetries || res.destroyed) {
            throw new HttpError(
              "upstream_failed",
              `The node${tried.length > 1 ? "s" : ""} serving ${chat.model} failed before answering (${error.message}).`,
              null,
              { "retry-after": "1" },
            );
          }
        }
      }
    } finally {
      if (!handedOver) hold.release();
      capacity.freed();
    }
  }

  /** One attempt on one node. Resolves when the response is complete (or ended mid-stream). */
  function forward(
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
      let settled = false;
      let started2 = false; // bytes went to the consumer
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
      const fail = (outcome: "failure" | "cooldown", reason: string, retryAfterMs?: number) => {
        if (settled) return;
        settled = true;
        clearTimeout(firstByteTimer);
        lease.release(outcome, retryAfterMs !== undefined ? { retryAfterMs } : undefined);
        upstream.destroy();
        reject(new AttemptFailed(outcome, reason, retryAfterMs));
      };
      const firstByteTimer = setTimeout(
        () => fail("failure", `no response within ${routing.firstByteTimeoutMs} ms`),
        routing.firstByteTimeoutMs,
      );
      const onConsumerGone = () => {
        if (!res.writableFinished) upstream.destroy();
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
        if (status >= 500 || status === 401 || status === 403) {
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
          lease.release("neutral");
          res.writeHead(status, {
            "content-type": up.headers["content-type"] ?? "application/json",
            "x-request-id": requestId,
            "x-gbt-gateway-ms": gatewayMs.toFixed(3),
          });
          up.pipe(res);
          up.on("end", () => {
            res.off("close", onConsumerGone);
            resolve(completedOf(requestId, chat, lease, sentAt, 0, 0, null, "rejected"));
          });
          up.on("error", () => res.destroy());
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
        const relay = new SseRelay();
        let firstChunkAt = 0;
        let lastChunkAt = 0;
        const stall = setTimeout(() => {
          up.destroy(new Error(`no chunk for ${routing.stallTimeoutMs} ms`));
        }, routing.stallTimeoutMs);
        up.on("data", (chunk: Buffer) => {
          stall.refresh();
          const out = relay.push(chunk);
          if (out.length > 0) {
            lastChunkAt = performance.now();
            if (firstChunkAt === 0) firstChunkAt = lastChunkAt;
            res.write(out);
          }
        });
        const finish = (error: Error | null) => {
          if (settled) return;
          settled = true;
          clearTimeout(stall);
          res.off("close", onConsumerGone);
          const consumerGone = res.destroyed && !res.writableFinished;
          const complete = relay.done && error === null;
          // role chunk, content chunks, finish chunk, [usage chunk], [DONE]
          const contentEvents = complete
            ? Math.max(0, relay.events - 3 - (chat.includeUsage ? 1 : 0))
            : Math.max(0, relay.events - 1);
          const generationMs = lastChunkAt > firstChunkAt ? lastChunkAt - firstChunkAt : 0;
          if (complete) {
            lease.release("success", { outputTokens: contentEvents, generationMs });
            res.end();
          } else if (consumerGone) {
            lease.release("neutral");
          } else {
            lease.release("failure");
            metrics.upstreamFailures.inc({ outcome: "mid_stream" });
            res.end(
              `data: ${JSON.stringify({
                error: {
                  message: `The node serving this request failed mid-stream (${error?.message ?? "stream ended early"}); you are charged only for the tokens delivered.`,
                  type: "server_error",
                  param: null,
                  code: "upstream_failed",
                },
              })}\n\n`,
            );
          }
          resolve(
            completedOf(
              requestId,
              chat,
              lease,
              headersAt,
              contentEvents,
              generationMs,
              relay.receipt,
              complete ? "complete" : consumerGone ? "cancelled" : "failed",
            ),
          );
        };
        up.on("end", () => finish(relay.pending > 0 ? new Error("stream cut inside an event") : null));
        up.on("error", (error) => finish(error));
        up.on("aborted", () => finish(new Error("connection to the node lost")));
        up.on("close", () => finish(relay.done ? null : new Error("connection to the node lost")));
      }

      function relayWhole(up: IncomingMessage, gatewayMs: number): void {
        const chunks: Buffer[] = [];
        up.on("data", (chunk: Buffer) => chunks.push(chunk));
        up.on("error", (error) => fail("failure", error.message));
        up.on("end", () => {
          if (settled) return;
          if (!up.complete) {
            fail("failure", "connection to the node lost");
            return;
          }
          settled = true;
          started2 = true;
          res.off("close", onConsumerGone);
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
          res.writeHead(200, {
            "content-type": "application/json",
            "content-length": body.length,
            "x-request-id": requestId,
            "x-gbt-gateway-ms": gatewayMs.toFixed(3),
          });
          res.end(body);
          const receiptHeader = up.headers[RECEIPT_HEADER];
          const receipt =
            typeof receiptHeader === "string"
              ? Buffer.from(receiptHeader, "base64url").toString("utf8")
              : null;
          const completed = completedOf(requestId, chat, lease, sentAt, 0, 0, receipt, "complete");
          completed.wholeBody = body;
          lease.release("success");
          resolve(completed);
        });
      }

      upstream.end(raw);
    });
  }

  return { handle };
}

function completedOf(
  requestId: string,
  chat: ParsedChat,
  lease: Lease,
  since: number,
  contentEvents: number,
  generationMs: number,
  receipt: string | null,
  state: CompletedRequest["state"],
): CompletedRequest {
  return {
    requestId,
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

/**
 * Requests waiting for a slot when every candidate is at capacity. A finished request wakes the
 * longest waiting one; every waiter also looks again every 250 ms (a parked node's probe time or a
 * cooldown can free capacity without a request finishing), until its deadline.
 */
class CapacityQueue {
  readonly #waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves true when it is worth trying again, false once the deadline passed or the line is full. */
  wait(deadline: number): Promise<boolean> {
    const left = deadline - performance.now();
    if (left <= 0 || this.#waiters.length >= this.limit) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          const at = this.#waiters.indexOf(wake);
          if (at >= 0) this.#waiters.splice(at, 1);
          resolve(performance.now() < deadline);
        },
        Math.min(left, 250),
      );
      this.#waiters.push(wake);
    });
  }

  freed(): void {
    this.#waiters.shift()?.();
  }
}
