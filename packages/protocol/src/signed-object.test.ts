import { randomUUID } from "node:crypto";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { hashPayload } from "./canonical-json.js";
import { GbtError } from "./errors.js";
import {
  authenticatedSigner,
  digestOf,
  type SignedObject,
  signObject,
  verifyObject,
} from "./signed-object.js";

const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
const stranger = privateKeyToAccount(`0x${"22".repeat(32)}`);
const node = privateKeyToAccount(`0x${"33".repeat(32)}`).address;
const NOW = 1_800_000_000_000;
const now = () => NOW;
const t = NOW / 1000;

async function signedJob(signer = owner, overrides: Record<string, unknown> = {}) {
  return signObject(signer, {
    kind: "Job",
    chainId: 31337,
    message: {
      jobId: randomUUID(),
      node,
      issuer: signer.address,
      type: "status.read",
      nonce: 1,
      notBefore: t - 5,
      expiresAt: t + 300,
      allowlistVersion: 1,
      ...overrides,
    },
    payload: { verbose: true },
  });
}

const verify = (value: unknown, extra: Record<string, unknown> = {}) =>
  verifyObject(value, {
    kind: "Job",
    chainId: 31337,
    allowedSigners: [owner.address],
    audience: node,
    now,
    ...extra,
  });

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GbtError);
    return (error as GbtError).code;
  }
  throw new Error("expected a rejection");
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value));

describe("signed objects", () => {
  it("round-trips a job through JSON and binds the payload hash", async () => {
    const job = await signedJob();
    expect(job.message.paramsHash).toBe(hashPayload({ verbose: true }));
    const verified = await verify(clone(job));
    expect(verified.message.issuer).toBe(owner.address);
    expect(verified.payload).toEqual({ verbose: true });
  });

  it("rejects each kind of tampering with its own error code", async () => {
    const job = await signedJob();
    const changedField = clone(job) as SignedObject<"Job">;
    changedField.message.nonce = 2;
    const otherChain = clone(job) as SignedObject<"Job">;
    otherChain.domain.chainId = 1;
    const otherDomain = clone(job) as SignedObject<"Job">;
    otherDomain.domain.name = "not-gbt";
    const changedPayload = clone(job) as SignedObject<"Job">;
    changedPayload.payload = { verbose: false };
    const expired = await signedJob(owner, { notBefore: t - 900, expiresAt: t - 600 });
    const future = await signedJob(owner, { notBefore: t + 600, expiresAt: t + 900 });
    const wrongSigner = await signedJob(stranger);
    const otherNode = await signedJob(owner, { node: stranger.address });

    const codes = {
      changedField: await rejection(verify(changedField)),
      otherChain: await rejection(verify(otherChain)),
      otherDomain: await rejection(verify(otherDomain)),
      changedPayload: await rejection(verify(changedPayload)),
      expired: await rejection(verify(expired)),
      future: await rejection(verify(future)),
      wrongSigner: await rejection(verify(wrongSigner)),
      otherNode: await rejection(verify(otherNode)),
    };
    expect(codes).toEqual({
      changedField: "SIGNATURE_INVALID",
      otherChain: "WRONG_CHAIN",
      otherDomain: "WRONG_DOMAIN",
      changedPayload: "PAYLOAD_HASH_MISMATCH",
      expired: "EXPIRED",
      future: "NOT_YET_VALID",
      wrongSigner: "UNKNOWN_SIGNER",
      otherNode: "WRONG_AUDIENCE",
    });
  });

  it("checks the signature before it hashes the payload: a forged object with a megabyte payload is refused unhashed", async () => {
    const job = await signedJob();
    const forged = clone(job) as SignedObject<"Job">;
    forged.message.nonce = 3; // the signature no longer covers the message
    forged.payload = { filler: "x".repeat(1024 * 1024) }; // nor does the payload match its hash
    // Had the payload been hashed first, this would be PAYLOAD_HASH_MISMATCH.
    expect(await rejection(verify(forged))).toBe("SIGNATURE_INVALID");
  });

  it("accepts objects inside the clock skew and rejects them just outside", async () => {
    const job = await signedJob(owner, { notBefore: t - 100, expiresAt: t - 20 });
    await expect(verify(job)).resolves.toBeTruthy();
    const late = await signedJob(owner, { notBefore: t - 100, expiresAt: t - 31 });
    expect(await rejection(verify(late))).toBe("EXPIRED");
  });

  it("rejects malformed envelopes, extra fields and another kind as INVALID_OBJECT", async () => {
    const job = await signedJob();
    const extra = clone(job) as unknown as { message: Record<string, unknown> };
    extra.message.shell = "rm -rf /";
    expect(await rejection(verify(extra))).toBe("INVALID_OBJECT");
    expect(await rejection(verify({ ...clone(job), signature: "0x1234" }))).toBe("INVALID_OBJECT");
    expect(await rejection(verify("not an object"))).toBe("INVALID_OBJECT");
    expect(await rejection(verify({ ...clone(job), kind: "Heartbeat" }))).toBe("INVALID_OBJECT");
    const badVersion = clone(job) as unknown as { message: Record<string, unknown> };
    badVersion.message.schemaVersion = 99;
    expect(await rejection(verify(badVersion))).toBe("INVALID_OBJECT");
  });

  it("accepts only the canonical encoding: the high-s twin and other v values are refused", async () => {
    const signed = await signedJob();
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const r = signed.signature.slice(2, 66);
    const s = BigInt(`0x${signed.signature.slice(66, 130)}`);
    const v = Number.parseInt(signed.signature.slice(130), 16);
    expect([27, 28]).toContain(v);
    const twin =
      `0x${r}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as const;
    const variants = [
      twin, // recovers the same signer: the malleated copy
      `0x${signed.signature.slice(2, 130)}${(v - 27).toString(16).padStart(2, "0")}`, // v as 0/1
      `0x${signed.signature.slice(2, 130)}${(v + 8).toString(16).padStart(2, "0")}`, // v as 35+ (EIP-155 style)
    ] as const;
    for (const signature of variants) {
      await expect(verify({ ...signed, signature })).rejects.toMatchObject({
        code: "SIGNATURE_INVALID",
        message: expect.stringContaining("not canonical"),
      });
    }
    await expect(verify(clone(signed))).resolves.toMatchObject({ message: signed.message });
  });

  it("rejects a signature that is well-formed but garbage", async () => {
    const job = clone(await signedJob());
    job.signature = `0x${"ab".repeat(65)}`;
    expect(await rejection(verify(job))).toBe("SIGNATURE_INVALID");
  });

  it("refuses to sign an object that names another signer", async () => {
    await expect(
      signObject(stranger, {
        kind: "Job",
        chainId: 31337,
        message: {
          jobId: randomUUID(),
          node,
          issuer: owner.address,
          type: "status.read",
          nonce: 1,
          notBefore: t,
          expiresAt: t + 60,
          allowlistVersion: 1,
        },
        payload: {},
      }),
    ).rejects.toMatchObject({ code: "SIGNER_MISMATCH" });
  });

  it("signs and verifies every kind, bound to its audience and chain", async () => {
    const nodeKey = privateKeyToAccount(`0x${"44".repeat(32)}`);
    const gateway = stranger.address;
    const heartbeat = await signObject(nodeKey, {
      kind: "Heartbeat",
      chainId: 8453,
      message: { node: nodeKey.address, gateway, seq: 7, inFlight: 2, issuedAt: t, expiresAt: t + 30 },
      payload: { models: ["tiny"] },
    });
    await expect(
      verifyObject(heartbeat, { kind: "Heartbeat", chainId: 8453, audience: gateway, now }),
    ).resolves.toMatchObject({ message: { seq: 7 } });
    expect(
      await rejection(
        verifyObject(heartbeat, { kind: "Heartbeat", chainId: 8453, audience: owner.address, now }),
      ),
    ).toBe("WRONG_AUDIENCE");

    const receipt = await signObject(nodeKey, {
      kind: "UsageReceipt",
      chainId: 8453,
      message: {
        requestId: "req-1",
        node: nodeKey.address,
        gateway,
        model: "gbt-test-tiny",
        promptTokens: 12,
        completionTokens: 30,
        ttftMs: 4,
        durationMs: 40,
        issuedAt: t,
        expiresAt: t + 3600,
      },
      payload: { itl: [1, 2] },
    });
    await expect(verifyObject(receipt, { kind: "UsageReceipt", chainId: 8453, now })).resolves.toBeTruthy();

    const manifest = await signObject(owner, {
      kind: "ModelManifest",
      chainId: 8453,
      message: { name: "tiny", version: "1.0.0", publisher: owner.address, createdAt: t - 86_400 * 365 },
      payload: { name: "tiny", version: "1.0.0" },
    });
    await expect(verifyObject(manifest, { kind: "ModelManifest", chainId: 8453, now })).resolves.toBeTruthy();
    expect(
      await rejection(
        verifyObject(manifest, { kind: "ModelManifest", chainId: 8453, now, maxAgeSeconds: 3600 }),
      ),
    ).toBe("EXPIRED");
  });

  it("gives equal objects equal digests and different objects different ones", async () => {
    const a = await signedJob();
    const b = clone(a);
    expect(digestOf(b)).toBe(digestOf(a));
    b.message.nonce = 5;
    expect(digestOf(b)).not.toBe(digestOf(a));
  });
});

describe("authenticatedSigner", () => {
  it("names the signer a canonical signature proves, whatever else is wrong; null for anything unproven", async () => {
    const job = clone(await signedJob());
    const as = (value: unknown) => authenticatedSigner(value, { kind: "Job" });
    expect(await as(job)).toBe(owner.address);
    // Proven even when the payload, window or chain would fail verification: the signer is known.
    expect(await as({ ...job, payload: { verbose: false } })).toBe(owner.address);
    expect(await as(clone(await signedJob(owner, { expiresAt: t - 100, notBefore: t - 200 })))).toBe(
      owner.address,
    );
    // Unproven: another issuer written in, a flipped byte, the other v, junk, another kind.
    expect(await as({ ...job, message: { ...job.message, issuer: stranger.address } })).toBeNull();
    const flipped = `${job.signature.slice(0, 10)}${job.signature[10] === "0" ? "1" : "0"}${job.signature.slice(11)}`;
    expect(await as({ ...job, signature: flipped })).toBeNull();
    expect(
      await as({
        ...job,
        signature: `${job.signature.slice(0, 130)}${job.signature.endsWith("1b") ? "1c" : "1b"}`,
      }),
    ).toBeNull();
    expect(await as({ ...job, signature: "0x00" })).toBeNull();
    expect(await as("garbage")).toBeNull();
    expect(await authenticatedSigner(job, { kind: "JobResult" })).toBeNull();
  });
});
