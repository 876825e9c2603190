import { randomUUID } from "node:crypto";
import {
  ALLOWLIST_VERSION,
  digestOf,
  isGbtError,
  jobEnvelopeHash,
  type SignedObject,
  signObject,
  verifyJobResult,
} from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { signJobResult } from "./job-result.js";

const CHAIN_ID = 31337;
const NOW_MS = 1_700_000_000_000;
const now = () => NOW_MS;
const node = privateKeyToAccount(generatePrivateKey());
const issuer = privateKeyToAccount(generatePrivateKey());
const auditHash = `0x${"cd".repeat(32)}` as const;

function signJob(payload: unknown = { key: "backend.capacity", value: 2 }): Promise<SignedObject<"Job">> {
  return signObject(issuer, {
    kind: "Job",
    chainId: CHAIN_ID,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: issuer.address,
      type: "config.set",
      nonce: 1,
      notBefore: NOW_MS / 1000 - 5,
      expiresAt: NOW_MS / 1000 + 300,
      allowlistVersion: ALLOWLIST_VERSION,
    },
    payload,
  });
}

/** The envelope as the node received it (parsed from the wire) and the ids it signs its answer with. */
function received(job: unknown) {
  const wire = JSON.parse(JSON.stringify(job)) as SignedObject<"Job">;
  return {
    wire,
    ids: {
      jobId: wire.message.jobId,
      node: node.address,
      issuer: issuer.address,
      digest: digestOf(wire),
      envelopeHash: jobEnvelopeHash(wire),
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("JobResult", () => {
  it("signs a result that the issuer verifies against its job, bound to the envelope, the payload and the audit entry", async () => {
    const job = await signJob();
    const { ids } = received(job);
    const signed = await signJobResult(node, {
      chainId: CHAIN_ID,
      job: ids,
      state: "succeeded",
      result: { pulled: "tiny-test-model", bytes: 1234 },
      auditHash,
      now,
    });
    const verified = await verifyJobResult(JSON.parse(JSON.stringify(signed)), { job, now });
    expect(verified.message).toMatchObject({
      jobId: job.message.jobId,
      node: node.address,
      issuer: issuer.address,
      jobHash: digestOf(job),
      envelopeHash: jobEnvelopeHash(JSON.parse(JSON.stringify(job))),
      state: "succeeded",
      auditHash,
      issuedAt: NOW_MS / 1000,
    });
    expect(verified.payload).toEqual({ pulled: "tiny-test-model", bytes: 1234 });
  });

  it("a node-signed rejection of a corrupted copy of a real job does not verify against the real job", async () => {
    const job = await signJob();
    // The copy keeps the message (and so the EIP-712 digest) but carries other params.
    const corrupted = received({ ...job, payload: { key: "backend.capacity", value: 200 } });
    expect(corrupted.ids.digest).toBe(digestOf(job));
    const answer = await signJobResult(node, {
      chainId: CHAIN_ID,
      job: corrupted.ids,
      state: "rejected",
      result: { error: { code: "PAYLOAD_HASH_MISMATCH" } },
      auditHash,
      now,
    });
    // It is a valid answer to the copy…
    await expect(verifyJobResult(answer, { job: corrupted.wire, now })).resolves.toBeTruthy();
    // …and not to the job the owner sent.
    const error = await rejection(verifyJobResult(answer, { job, now }));
    expect(isGbtError(error, "INVALID_OBJECT")).toBe(true);
    expect((error as Error).message).toMatch(/envelopeHash differs/);
    // A copy with another signature is another envelope too.
    const resigned = received({ ...job, signature: (await signJob()).signature });
    const other = await signJobResult(node, {
      chainId: CHAIN_ID,
      job: resigned.ids,
      state: "rejected",
      result: null,
      auditHash,
      now,
    });
    expect(isGbtError(await rejection(verifyJobResult(other, { job, now })), "INVALID_OBJECT")).toBe(true);
  });

  it("rejects a changed result (PAYLOAD_HASH_MISMATCH), another node (UNKNOWN_SIGNER), another job and audience", async () => {
    const job = await signJob();
    const signed = await signJobResult(node, {
      chainId: CHAIN_ID,
      job: received(job).ids,
      state: "failed",
      result: { error: "disk full" },
      auditHash,
      now,
    });
    const changed = await rejection(verifyJobResult({ ...signed, payload: { error: "none" } }, { job, now }));
    expect(isGbtError(changed, "PAYLOAD_HASH_MISMATCH")).toBe(true);
    const forOtherNode = { ...job, message: { ...job.message, node: issuer.address } };
    expect(
      isGbtError(await rejection(verifyJobResult(signed, { job: forOtherNode, now })), "UNKNOWN_SIGNER"),
    ).toBe(true);
    const anotherJob = await signJob();
    expect(
      isGbtError(await rejection(verifyJobResult(signed, { job: anotherJob, now })), "INVALID_OBJECT"),
    ).toBe(true);
    const fromOther = { ...job, message: { ...job.message, issuer: node.address } };
    expect(
      isGbtError(await rejection(verifyJobResult(signed, { job: fromOther, now })), "WRONG_AUDIENCE"),
    ).toBe(true);
  });

  it("refuses to sign with a key that is not the job's node", async () => {
    const { ids } = received(await signJob());
    const error = await rejection(
      signJobResult(issuer, { chainId: CHAIN_ID, job: ids, state: "rejected", result: null, auditHash }),
    );
    expect(isGbtError(error, "SIGNER_MISMATCH")).toBe(true);
  });
});
