/**
 * The agent's gate: decides whether a received Job may run, cheapest checks first, each failure a
 * GbtError with its own code. Signature, chain, audience, time window and signer come from the
 * protocol's `verifyObject`; then the job's lifetime, the allowlist version and type, the
 * parameters under the type's strict schema, its policy, and last the replay store, so that only a
 * job that passed everything else is ever recorded as seen.
 */
import {
  digestOf,
  GbtError,
  type Job,
  recoverSignerNative,
  type SignedObject,
  unknownJobType,
  verifyObject,
} from "@gbt/protocol";
import type { Address, Hex } from "viem";
import type { AllowlistEntry, AllowlistRegistry } from "../allowlist/allowlist-registry.js";
import type { ClaimResult, ReplayStore } from "./replay-store.js";

/** The longest a job may be valid, from notBefore to expiresAt, in seconds. */
export const MAX_JOB_LIFETIME_SECONDS = 600;

export interface VerifyJobContext {
  /** This node's address: the job must be meant for it. */
  node: Address;
  chainId: number;
  /** Addresses allowed to sign jobs for this node. */
  owners: readonly Address[];
  allowlist: AllowlistRegistry;
  replay: ReplayStore;
  /** Clock in milliseconds. */
  now?: () => number;
  /** Accepted clock skew in seconds (default 30). */
  skewSeconds?: number;
}

/** A job that passed every check, with its parsed parameters and its allowlist entry. */
export type VerifiedJob = {
  signed: SignedObject<"Job">;
  job: Job;
  params: unknown;
  entry: AllowlistEntry;
  digest: Hex;
} & ClaimResult;

/** Verifies a received job (already parsed from JSON); returns it, or throws a GbtError naming the failed check. */
export async function verifyJobEnvelope(value: unknown, ctx: VerifyJobContext): Promise<VerifiedJob> {
  const now = ctx.now ?? Date.now;
  const skew = ctx.skewSeconds ?? 30;
  const signed = await verifyObject(value, {
    kind: "Job",
    chainId: ctx.chainId,
    audience: ctx.node,
    allowedSigners: ctx.owners,
    now,
    skewSeconds: skew,
    recoverSigner: recoverSignerNative,
  });
  const job = signed.message;

  const nowSeconds = Math.floor(now() / 1000);
  if (
    job.expiresAt - job.notBefore > MAX_JOB_LIFETIME_SECONDS ||
    job.expiresAt > nowSeconds + MAX_JOB_LIFETIME_SECONDS + skew
  ) {
    throw new GbtError("INVALID_OBJECT", "The job is valid for more than 10 minutes.", {
      details: { notBefore: job.notBefore, expiresAt: job.expiresAt, now: nowSeconds },
      hint: `Sign the job again with expiresAt at most ${MAX_JOB_LIFETIME_SECONDS} s after notBefore and after now.`,
    });
  }

  if (job.allowlistVersion !== ctx.allowlist.version) {
    throw new GbtError(
      "UNKNOWN_JOB_TYPE",
      `The job was written for allowlist version ${job.allowlistVersion}; this node has version ${ctx.allowlist.version}.`,
      {
        details: { expected: ctx.allowlist.version, actual: job.allowlistVersion },
        hint: "Upgrade the issuing tool or the node so both use the same allowlist, then sign the job again.",
      },
    );
  }

  const entry = ctx.allowlist.get(job.type);
  if (!entry) throw unknownJobType(job.type, ctx.allowlist.entries());
  const params = ctx.allowlist.parseParams(job.type, signed.payload);
  entry.policy?.(params, { owners: ctx.owners, now: now() });

  const digest = digestOf(signed);
  const claim = ctx.replay.claim({
    jobId: job.jobId,
    issuer: job.issuer,
    nonce: job.nonce,
    digest,
    type: job.type,
  });
  return { signed, job, params, entry, digest, ...claim };
}
