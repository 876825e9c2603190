/**
 * The node's answer to a job: a protocol `JobResult` signed by the node key, meant for the job's
 * issuer. It names the job by its EIP-712 digest (`jobHash`), binds the result payload
 * (`resultHash`) and the audit entry that recorded the outcome (`auditHash`), so an issuer can
 * later ask for that entry and check it against the node's chain.
 */
import { GbtError, type SignedObject, signObject, verifyObject } from "@gbt/protocol";
import type { Address, Hex, LocalAccount } from "viem";
import type { AuditState } from "./audit-log.js";

export type SignedJobResult = SignedObject<"JobResult">;

export interface SignJobResultParameters {
  chainId: number;
  /** The job answered: its id, the node and issuer it named, and its digest (`digestOf(job)`). */
  job: { jobId: string; node: Address; issuer: Address; digest: Hex };
  state: AuditState;
  /** The result payload, bound by `resultHash`. */
  result: unknown;
  /** The hash of the audit entry that recorded this outcome. */
  auditHash: Hex;
  /** Clock in milliseconds. */
  now?: () => number;
}

/** Signs a JobResult with the node key (`account` must be the job's node). */
export function signJobResult(
  account: LocalAccount,
  parameters: SignJobResultParameters,
): Promise<SignedJobResult> {
  const { chainId, job, state, result, auditHash, now = Date.now } = parameters;
  return signObject(account, {
    kind: "JobResult",
    chainId,
    message: {
      jobId: job.jobId,
      node: job.node,
      issuer: job.issuer,
      jobHash: job.digest,
      state,
      auditHash,
      issuedAt: Math.floor(now() / 1000),
    },
    payload: result,
  });
}

export interface VerifyJobResultOptions {
  chainId: number;
  /** The node that must have signed it. */
  node: Address;
  /** The issuer it must be meant for. */
  issuer: Address;
  /** When given, the digest of the job it must answer. */
  jobHash?: Hex;
  /** Clock in milliseconds. */
  now?: () => number;
}

/**
 * Verifies a JobResult received from a node: shape, domain, chain, audience (the issuer), payload
 * binding (PAYLOAD_HASH_MISMATCH), signature and signer (the node); throws a GbtError naming the check.
 */
export async function verifyJobResult(
  value: unknown,
  options: VerifyJobResultOptions,
): Promise<SignedJobResult> {
  const signed = await verifyObject(value, {
    kind: "JobResult",
    chainId: options.chainId,
    audience: options.issuer,
    allowedSigners: [options.node],
    ...(options.now ? { now: options.now } : {}),
  });
  if (options.jobHash !== undefined && signed.message.jobHash !== options.jobHash.toLowerCase()) {
    throw new GbtError("INVALID_OBJECT", "The JobResult answers another job (its jobHash differs).", {
      details: { expected: options.jobHash.toLowerCase(), actual: signed.message.jobHash },
    });
  }
  return signed;
}
