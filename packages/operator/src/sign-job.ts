/**
 * Signing an approved job with the owner key: the only power the Operator holds. The parameters
 * are parsed once more with the agent's schemas, the job is bound to this node and chain, and it is
 * short-lived (the agent accepts at most 10 minutes ahead).
 */
import { randomUUID } from "node:crypto";
import { type SignedObject, signObject } from "@gbt/protocol";
import type { LocalAccount } from "viem";
import { assertSignable, type ProposalContext, type ProposedJob } from "./proposal.js";

export const JOB_TTL_SECONDS = 300;

export interface SignApprovedJobParameters {
  job: ProposedJob;
  account: LocalAccount;
  chainId: number;
  context: ProposalContext;
  /** The allowlist version the agent published (a mismatch would be rejected by the agent). */
  allowlistVersion: number;
  nonce: number;
  now?: () => number;
  newJobId?: () => string;
  ttlSeconds?: number;
}

export async function signApprovedJob(parameters: SignApprovedJobParameters): Promise<SignedObject<"Job">> {
  const { job, account, chainId, context } = parameters;
  const payload = assertSignable(job, context);
  const notBefore = Math.floor((parameters.now ?? Date.now)() / 1000);
  return signObject(account, {
    kind: "Job",
    chainId,
    message: {
      jobId: (parameters.newJobId ?? randomUUID)(),
      node: context.node,
      issuer: account.address,
      type: job.type,
      nonce: parameters.nonce,
      notBefore,
      expiresAt: notBefore + (parameters.ttlSeconds ?? JOB_TTL_SECONDS),
      allowlistVersion: parameters.allowlistVersion,
    },
    payload,
  });
}
