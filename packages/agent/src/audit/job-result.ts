/**
 * The node's answer to a job: a protocol `JobResult` signed by the node key, meant for the job's
 * issuer. It names the job by its EIP-712 digest (`jobHash`) and the exact envelope received
 * (`envelopeHash`, so an answer to a corrupted copy is not an answer to the real job), binds the
 * result payload (`resultHash`) and the audit entry that recorded the outcome (`auditHash`), so an
 * issuer can later ask for that entry and check it against the node's chain. Issuers check it
 * with protocol's `verifyJobResult`.
 */
import { type SignedObject, signObject } from "@gbt/protocol";
import type { Address, Hex, LocalAccount } from "viem";
import type { AuditState } from "./audit-log.js";

export type SignedJobResult = SignedObject<"JobResult">;

export interface SignJobResultParameters {
  chainId: number;
  /**
   * The job answered: its id, the node and issuer it named, its digest (`digestOf(job)`) and the
   * hash of the envelope as received (`jobEnvelopeHash`).
   */
  job: { jobId: string; node: Address; issuer: Address; digest: Hex; envelopeHash: Hex };
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
      envelopeHash: job.envelopeHash,
      state,
      auditHash,
      issuedAt: Math.floor(now() / 1000),
    },
    payload: result,
  });
}
