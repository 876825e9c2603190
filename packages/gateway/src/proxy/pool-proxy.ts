/**
 * The pooled consumer routes (`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
 * `/v1/responses`: one proxy, each route a row of proxy-routes.ts) on raw node:http (the hot
 * path). Before the first byte the request path does only what it must, all in memory: admission
 * (admission.ts: API key, tier, one JSON.parse, what the request needs, price, credit hold), then a
 * routing pick among the instances able to serve it and forwarding with retries (retries.ts,
 * attempt.ts). The body is forwarded byte for byte; whole responses are relayed in one write,
 * streams chunk by chunk (attempt.ts and its two relays). Signature checks, the ledger write and
 * logging happen after the response, in batches (see billing/receipt-settler.ts).
 *
 * Failure rules: a node that fails before the first byte (connection error, 5xx, 401/403 on the
 * link token, no headers within `firstByteTimeoutMs`) counts as a failure for its breaker and the
 * request moves to another candidate (at most `maxRetries` more); a node's 429 is a cooldown and
 * also moves on; any other 4xx is the consumer's problem (neutral) and goes back as it is. Once
 * the stream has started, a failure (connection lost, no chunk for `stallTimeoutMs`) ends the
 * consumer's stream with an error event, and the consumer pays only for the tokens delivered.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, readBody } from "@gbt/protocol";
import type { Logger } from "pino";
import type { AccountStore } from "../auth/accounts.js";
import type { CreditHolds } from "../billing/credit-holds.js";
import type { CompletedRequest, ReceiptSettler } from "../billing/receipt-settler.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import type { RateLimiter } from "../limits/rate-limiter.js";
import type { InstancePool } from "../pool/instance-pool.js";
import { admitBody, authorizeRequest, type ObservedCompletion, type RequestAdmission } from "./admission.js";
import { CapacityQueue } from "./capacity-queue.js";
import type { ProxyRoute } from "./proxy-routes.js";
import { attemptFailed, type RetryContext, retryLoop, startFirstAttempt } from "./retries.js";

/** The header a consumer may send its own request id in (the openai SDK's); echoed back as it is. */
export const CLIENT_REQUEST_ID_HEADER = "x-client-request-id";

export interface PoolProxyDependencies {
  config: GatewayConfig;
  accounts: Pick<AccountStore, "authenticate">;
  reservations: CreditHolds;
  pool: InstancePool;
  settler: ReceiptSettler;
  metrics: GatewayMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Which instances a request may use (verification's tiers); absent, every node is `community`. */
  admit?: RequestAdmission;
  /** Offered every complete non-streamed chat completion (verification's sampling). */
  observe?: (completion: ObservedCompletion) => void;
  /** The door's limits per key and account. */
  limiter?: RateLimiter;
}

export interface PoolProxy {
  /**
   * Serves one request of `route` under the gateway's request id (the one its receipt carries);
   * throws the HttpError to answer when nothing was sent yet.
   */
  handle(
    route: ProxyRoute,
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    requestId: string,
  ): Promise<void>;
}

export function createPoolProxy(deps: PoolProxyDependencies): PoolProxy {
  const { config, pool, settler, metrics, logger, observe } = deps;
  const capacity = new CapacityQueue(config.routing.maxQueued);
  const retry: RetryContext = { routing: config.routing, metrics, pool, capacity, logger };

  async function handle(
    route: ProxyRoute,
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    requestId: string,
  ): Promise<void> {
    // Each step is awaited here, on one async frame: the hot path pays for no nested ones.
    const clientRequestId = req.headers[CLIENT_REQUEST_ID_HEADER];
    if (typeof clientRequestId === "string" && clientRequestId.length <= 512)
      res.setHeader(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    const authorized = authorizeRequest(deps, req);
    const raw =
      route.oversizedParam === null
        ? await readBody(req, deps.maxBodyBytes)
        : await readBody(req, deps.maxBodyBytes).catch((error: unknown) => {
            throw oversized(error, route.oversizedParam as string, deps.maxBodyBytes);
          });
    const admitted = admitBody(deps, authorized, route, raw);
    let handedOver = false;
    const rate = admitted.limits.headers;
    // Every answer to a limited key says where it stands (OpenAI's x-ratelimit-* headers).
    for (let i = 0; i < rate.length; i += 2) res.setHeader(rate[i] as string, rate[i + 1] as string);
    try {
      const tried: string[] = [];
      const first = startFirstAttempt(retry, res, admitted, requestId, started, tried);
      let completed: CompletedRequest;
      if (first === null) completed = await retryLoop(retry, res, admitted, requestId, started, tried, 0);
      else {
        try {
          completed = await first.promise;
        } catch (error) {
          attemptFailed(retry, res, admitted, first.lease, error, tried, 0, requestId);
          completed = await retryLoop(retry, res, admitted, requestId, started, tried, 1);
        }
      }
      completed.accountId = admitted.principal.accountId;
      completed.keyId = admitted.principal.keyId;
      completed.price = admitted.price;
      completed.promptBound = admitted.raw.length;
      handedOver = true;
      if (
        observe !== undefined &&
        completed.state === "complete" &&
        completed.wholeBody !== null &&
        route.name === "chat"
      ) {
        observe({
          requestId,
          model: admitted.request.model,
          instanceId: completed.instance.id,
          body: admitted.raw,
          response: completed.wholeBody,
        });
      }
      try {
        settler.submit(completed, admitted.hold);
      } finally {
        completed.deliver?.();
      }
    } finally {
      if (!handedOver) admitted.hold.release();
      admitted.limits.release();
      capacity.freed();
    }
  }

  return { handle };
}

/** A body over the size limit, on a route that names the parameter responsible (embeddings: `input`). */
function oversized(error: unknown, param: string, limit: number): unknown {
  if (!(error instanceof HttpError) || error.wireCode !== "request_too_large") return error;
  return new HttpError(
    "invalid_value",
    `The request body is over ${limit} bytes; send fewer or shorter inputs per request.`,
    param,
  );
}
