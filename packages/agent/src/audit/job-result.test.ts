import { randomUUID } from "node:crypto";
import { isGbtError } from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { signJobResult, verifyJobResult } from "./job-result.js";

const CHAIN_ID = 31337;
const node = privateKeyToAccount(generatePrivateKey());
const issuer = privateKeyToAccount(generatePrivateKey());
const job = {
  jobId: randomUUID(),
  node: node.address,
  issuer: issuer.address,
  digest: `0x${"ab".repeat(32)}` as const,
};
const auditHash = `0x${"cd".repeat(32)}` as const;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("JobResult", () => {
  it("signs a result that the issuer verifies, bound to the job, the payload and the audit entry", async () => {
    const signed = await signJobResult(node, {
      chainId: CHAIN_ID,
      job,
      state: "succeeded",
      result: { pulled: "tiny-test-model", bytes: 1234 },
      auditHash,
      now: () => 1_700_000_000_000,
    });
    const verified = await verifyJobResult(JSON.parse(JSON.stringify(signed)), {
      chainId: CHAIN_ID,
      node: node.address,
      issuer: issuer.address,
      jobHash: job.digest,
      now: () => 1_700_000_000_000,
    });
    expect(verified.message).toMatchObject({
      jobId: job.jobId,
      node: node.address,
      issuer: issuer.address,
      jobHash: job.digest,
      state: "succeeded",
      auditHash,
      issuedAt: 1_700_000_000,
    });
    expect(verified.payload).toEqual({ pulled: "tiny-test-model", bytes: 1234 });
  });

  it("rejects a changed result (PAYLOAD_HASH_MISMATCH), another node (UNKNOWN_SIGNER) and another job", async () => {
    const signed = await signJobResult(node, {
      chainId: CHAIN_ID,
      job,
      state: "failed",
      result: { error: "disk full" },
      auditHash,
    });
    const options = { chainId: CHAIN_ID, node: node.address, issuer: issuer.address };
    const changed = await rejection(verifyJobResult({ ...signed, payload: { error: "none" } }, options));
    expect(isGbtError(changed, "PAYLOAD_HASH_MISMATCH")).toBe(true);
    const other = await rejection(verifyJobResult(signed, { ...options, node: issuer.address }));
    expect(isGbtError(other, "UNKNOWN_SIGNER")).toBe(true);
    const wrongJob = await rejection(
      verifyJobResult(signed, { ...options, jobHash: `0x${"ef".repeat(32)}` }),
    );
    expect(isGbtError(wrongJob, "INVALID_OBJECT")).toBe(true);
    const wrongAudience = await rejection(verifyJobResult(signed, { ...options, issuer: node.address }));
    expect(isGbtError(wrongAudience, "WRONG_AUDIENCE")).toBe(true);
  });

  it("refuses to sign with a key that is not the job's node", async () => {
    const error = await rejection(
      signJobResult(issuer, { chainId: CHAIN_ID, job, state: "rejected", result: null, auditHash }),
    );
    expect(isGbtError(error, "SIGNER_MISMATCH")).toBe(true);
  });
});
