/**
 * The retry rules of a pooled request: lease the best instance of the model that has what the
 * request needs, forward, and on a failure before the first byte (or a node's 429) try the next
 * best one, never the same twice, at most `routing.maxRetries` more times. When every candidate is
 * at capacity the request waits in the capacity queue until its deadline. What the consumer gets
 * when nothing is left: 404 model_not_found, 400 model_not_capable (no active node of the model
 * can do what the request asks: tools, a JSON schema, images, embeddings…), 503 tier_unavailable
 * (nothing meets its minimum tier), 503 no_capacity, or 502 upstream_failed once a node was tried.
 */
import type { ServerResponse } from "node:http";
import { HttpError } from "@gbt/protocol";
import type { Logger } from "pino";
import type { CompletedRequest } from "../billing/receipt-settler.js";
import { type Capability, capabilitiesOf, needsMask } from "../pool/capabilities.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { Lease, LeaseOptions } from "../pool/lease.js";
import { type AdmittedRequest, MIN_TIER_HEADER } from "./admission.js";
import { type AttemptContext, AttemptFailed, forwardAttempt } from "./attempt.js";
import type { CapacityQueue } from "./capacity-queue.js";

export interface RetryContext extends AttemptContext {
  pool: InstancePool;
  capacity: CapacityQueue;
  logger: Logger;
}

/** The first attempt, started: its promise and its lease; null when the first pick found nothing. */
export interface FirstAttempt {
  promise: Promise<CompletedRequest>;
  lease: Lease;
}

/**
 * Leases the best instance and starts forwarding, without an async frame of its own: the common
 * case (the first pick answers) awaits only the attempt itself. On null, or when the attempt
 * rejects (see {@link attemptFailed}), the caller goes on with {@link retryLoop}.
 */
export function startFirstAttempt(
  context: RetryContext,
  res: ServerResponse,
  admitted: AdmittedRequest,
  requestId: string,
  started: number,
  tried: string[],
): FirstAttempt | null {
  const picked = context.pool.lease(admitted.request.model, leaseOptions(admitted, tried));
  if (picked.lease === null) return null;
  const { lease, link } = picked;
  if (lease.panic) context.metrics.panicRoutes.inc();
  return {
    promise: forwardAttempt(context, res, admitted.raw, admitted.request, lease, link, requestId, started),
    lease,
  };
}

function leaseOptions(admitted: AdmittedRequest, tried: string[]): LeaseOptions {
  const admit = admitted.tier?.allows;
  const needs = admitted.request.needs;
  return admit ? { exclude: tried, admit, needs } : { exclude: tried, needs };
}

/** Records a failed attempt; throws when it was not a node's failure, or when no retry is left. */
export function attemptFailed(
  context: RetryContext,
  res: ServerResponse,
  admitted: AdmittedRequest,
  lease: Lease,
  error: unknown,
  tried: string[],
  attempt: number,
  requestId: string,
): void {
  if (!(error instanceof AttemptFailed)) throw error;
  if (error.outcome === "neutral") {
    // Nobody is waiting for an answer: no retry, nothing counted against the node.
    throw new HttpError("client_closed_request", "The consumer closed the request before the node answered.");
  }
  const { routing, metrics, logger } = context;
  const chat = admitted.request;
  metrics.upstreamFailures.inc({ outcome: error.outcome });
  tried.push(lease.instance.id);
  logger.warn(
    { requestId, instance: lease.instance.id, outcome: error.outcome, reason: error.message },
    "node attempt failed before the first byte",
  );
  if (attempt >= routing.maxRetries || res.destroyed) {
    throw new HttpError(
      "upstream_failed",
      // The reason stays in the log above: echoed to consumers, socket errors would map the network behind a node's URL.
      `The node${tried.length > 1 ? "s" : ""} serving ${chat.model} failed before answering; try again.`,
      null,
      { "retry-after": "1" },
    );
  }
}

/** The retries, from attempt `first` on: pick again, wait for capacity, or give the consumer's answer. */
export async function retryLoop(
  context: RetryContext,
  res: ServerResponse,
  admitted: AdmittedRequest,
  requestId: string,
  started: number,
  tried: string[],
  first: number,
): Promise<CompletedRequest> {
  const { pool, capacity, routing } = context;
  const { request: chat, raw, tier } = admitted;
  // The line is kept from the request's arrival, whichever attempt waits in it.
  const queueDeadline = started + routing.queueTimeoutMs;
  for (let attempt = first; ; attempt++) {
    const picked = pool.lease(chat.model, leaseOptions(admitted, tried));
    if (picked.lease === null) {
      if (picked.reason === "unknown_model") {
        throw new HttpError("model_not_found", picked.error.message, "model");
      }
      const counts = picked.counts;
      if (counts.incapable > 0 && counts.instances - counts.stale - counts.incapable <= 0) {
        throw notCapable(pool, chat.model, chat.needs);
      }
      // The instances that could serve it at all (active, capable) are all below the tier.
      if (
        counts.belowTier > 0 &&
        counts.instances - counts.stale - counts.incapable - counts.belowTier <= 0
      ) {
        throw new HttpError(
          "tier_unavailable",
          `No active node serving ${chat.model} meets the minimum trust tier ${tier?.tier} (${counts.belowTier} below it). Retry later, or ask for a lower tier (${MIN_TIER_HEADER}).`,
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
    if (lease.panic) context.metrics.panicRoutes.inc();
    try {
      return await forwardAttempt(context, res, raw, chat, lease, link, requestId, started);
    } catch (error) {
      attemptFailed(context, res, admitted, lease, error, tried, attempt, requestId);
    }
  }
}

/**
 * 400 `model_not_capable`: no active instance of the model can do everything the request needs;
 * the message names what is missing (or, when each need is met somewhere but never together, all of them).
 */
function notCapable(pool: InstancePool, model: string, needs: readonly Capability[]): HttpError {
  const has = pool.modelCapabilities(model)?.mask ?? 0;
  const missing = capabilitiesOf(needsMask(needs) & ~has);
  const named = (missing.length > 0 ? missing : needs).join(", ");
  return new HttpError(
    "model_not_capable",
    missing.length > 0
      ? `No active node serving ${model} supports ${named}; pick a model whose GET /v1/models entry lists it, or drop it from the request.`
      : `No active node serving ${model} supports ${named} together; split the request or pick another model.`,
    "model",
  );
}
