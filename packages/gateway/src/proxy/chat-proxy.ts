/**
 * `POST /v1/chat/completions` through the pool, on raw node:http (the hot path). Before the first
 * byte the request path does only what it must, all in memory: admission (admission.ts: API key,
 * tier, one JSON.parse, price, credit hold), then a routing pick and forwarding with retries
 * (retries.ts, attempt.ts). The body is forwarded byte for byte; whole responses are relayed in one
 * write, streams chunk by chunk (attempt.ts and its two relays). Signature checks, the ledger
 * write and logging happen after the response, in batches (see billing/receipt-settler.ts).
 *
 * Failure rules: a node that fails before the first byte (connection error, 5xx, 401/403 on the
 * link token, no headers within `firstByteTimeoutMs`) counts as a failure for its breaker and the
 * request moves to another candidate (at most `maxRetries` more); a node's 429 is a cooldown and
 * also moves on; any other 4xx is the consumer's problem (neutral) and goes back as it is. Once
 * the stream has started, a failure (connection lost, no chunk for `stallTimeoutMs`) ends the
 * consumer's stream with an error event, and the consumer pays only for the tokens delivered.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody } from "@gbt/protocol";
import type { Logger } from "pino";
import type { AccountStore } from "../auth/accounts.js";
import type { CreditHolds } from "../billing/credit-holds.js";
import type { CompletedRequest, ReceiptSettler } from "../billing/receipt-settler.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayMetrics } from "../gateway-metrics.js";
import type { RateLimiter } from "../limits/rate-limiter.js";
import type { InstancePool } from "../pool/instance-pool.js";
import { admitBody, authorizeChat, type ObservedCompletion, type RequestAdmission } from "./admission.js";
import { CapacityQueue } from "./capacity-queue.js";
import { newRequestId } from "./request-id.js";
import { attemptFailed, type RetryContext, retryLoop, startFirstAttempt } from "./retries.js";

export interface ChatProxyDependencies {
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
  /** Offered every complete non-streamed response (verification's sampling). */
  observe?: (completion: ObservedCompletion) => void;
  /** The door's limits per key and account. */
  limiter?: RateLimiter;
}

export interface ChatProxy {
  /** Serves one request; throws the HttpError to answer when nothing was sent yet. */
  handle(req: IncomingMessage, res: ServerResponse, started: number): Promise<void>;
}

export function createChatProxy(deps: ChatProxyDependencies): ChatProxy {
  const { config, pool, settler, metrics, logger, observe } = deps;
  const capacity = new CapacityQueue(config.routing.maxQueued);
  const retry: RetryContext = { routing: config.routing, metrics, pool, capacity, logger };

  async function handle(req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    // Each step is awaited here, on one async frame: the hot path pays for no nested ones.
    const authorized = authorizeChat(deps, req);
    const admitted = admitBody(deps, authorized, await readBody(req, deps.maxBodyBytes));
    const requestId = newRequestId();
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
      if (observe !== undefined && completed.state === "complete" && completed.wholeBody !== null) {
        observe({
          requestId,
          model: admitted.chat.model,
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
