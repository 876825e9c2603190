/**
 * Signature mutants over every signed kind, not only Jobs: each valid object is mutated the ways
 * an attacker would (the high-s twin, other v values, a flipped bit, re-signed by someone else,
 * relabelled as another kind, another chain or domain, another audience, past its window) and
 * verified as its real verifier would. The figure that matters: 0 mutants accepted.
 */
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { GbtError } from "./errors.js";
import { type Kind, kindNames, kinds } from "./objects.js";
import { type SignedObject, signObject, verifyObject } from "./signed-object.js";

const signer = privateKeyToAccount(`0x${"44".repeat(32)}`);
const stranger = privateKeyToAccount(`0x${"55".repeat(32)}`);
const audience = privateKeyToAccount(`0x${"66".repeat(32)}`).address;
const CHAIN = 31337;
const NOW = 1_800_000_000_000;
const t = NOW / 1000;
const HASH = `0x${"ab".repeat(32)}` as const;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** A valid message of each kind, signed by `by` (its signer field) and addressed to `audience`. */
function messageOf(kind: Kind, by: `0x${string}`): Record<string, unknown> {
  switch (kind) {
    case "Job":
      return {
        jobId: "7f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        node: audience,
        issuer: by,
        type: "status.read",
        nonce: 1,
        notBefore: t - 5,
        expiresAt: t + 300,
        allowlistVersion: 1,
      };
    case "JobResult":
      return {
        jobId: "7f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        node: by,
        issuer: audience,
        jobHash: HASH,
        envelopeHash: HASH,
        state: "succeeded",
        auditHash: HASH,
        issuedAt: t - 5,
      };
    case "UsageReceipt":
      return {
        requestId: "req-1",
        node: by,
        gateway: audience,
        model: "m",
        promptTokens: 5,
        completionTokens: 8,
        ttftMs: 1,
        durationMs: 2,
        issuedAt: t - 5,
        expiresAt: t + 300,
      };
    case "ModelManifest":
      return { name: "tiny-chat", version: "1.0.0", publisher: by, createdAt: t - 5 };
    case "NodeRegistration":
      return {
        node: by,
        gateway: audience,
        url: "https://node.example",
        capacity: 4,
        nonce: 1,
        issuedAt: t - 5,
        expiresAt: t + 60,
      };
    case "Heartbeat":
      return { node: by, gateway: audience, seq: 2, inFlight: 0, issuedAt: t - 5, expiresAt: t + 60 };
    case "BenchmarkRecord":
      return {
        recordId: "8f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        node: by,
        backend: "embedded",
        modelDigest: "none",
        decodeTokPerSecMilli: 10_000,
        eligibleCapacity: 2,
        issuedAt: t - 5,
        expiresAt: t + 3600,
      };
    case "NodeClaim":
      return { node: audience, owner: by, code: "GBT-N7K4", issuedAt: t - 5, expiresAt: t + 600 };
    case "LinkAccept":
      return {
        gateway: by,
        node: audience,
        challenge: `0x${"ab".repeat(32)}`,
        issuedAt: t - 5,
        expiresAt: t + 60,
      };
    case "EarningsView":
      return { gateway: by, node: audience, issuedAt: t - 5, expiresAt: t + 300 };
  }
}

const payloadOf: Partial<Record<Kind, unknown>> = {
  Job: { verbose: true },
  JobResult: { ok: true },
  UsageReceipt: { stream: true },
  ModelManifest: { artifacts: [] },
  NodeRegistration: { models: [{ id: "m" }] },
  Heartbeat: { models: ["m"] },
  BenchmarkRecord: { fake: true },
  EarningsView: { requests: 1 },
};

const sign = (kind: Kind, by = signer) =>
  signObject(by, {
    kind,
    chainId: CHAIN,
    message: messageOf(kind, by.address) as never,
    payload: payloadOf[kind],
  });

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

function verifyAs(
  kind: Kind,
  value: unknown,
  extra: { now?: number; chainId?: number; audience?: `0x${string}` } = {},
) {
  const hasAudience = (kinds[kind] as { audienceField?: string }).audienceField !== undefined;
  return verifyObject(value, {
    kind,
    chainId: extra.chainId ?? CHAIN,
    allowedSigners: [signer.address],
    ...(hasAudience ? { audience: extra.audience ?? audience } : {}),
    now: () => extra.now ?? NOW,
    skewSeconds: 30,
  });
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ACCEPTED";
  } catch (error) {
    expect(error).toBeInstanceOf(GbtError);
    return (error as GbtError).code;
  }
}

function withSignature(signed: SignedObject<Kind>, signature: string): unknown {
  return { ...clone(signed), signature };
}

describe("signature mutants over every signed kind", () => {
  it(`refuses every mutant of all ${kindNames.length} kinds (0 accepted), each with its own code`, async () => {
    const results: Record<string, Record<string, string>> = {};
    for (const kind of kindNames) {
      const signed = (await sign(kind)) as SignedObject<Kind>;
      expect(await outcome(verifyAs(kind, clone(signed)))).toBe("ACCEPTED");
      const r = signed.signature.slice(2, 66);
      const s = BigInt(`0x${signed.signature.slice(66, 130)}`);
      const v = Number.parseInt(signed.signature.slice(130), 16);
      const twinS = (N - s).toString(16).padStart(64, "0");
      const otherV = (v === 27 ? 28 : 27).toString(16);
      const flipped = `${signed.signature.slice(0, 10)}${(Number.parseInt(signed.signature[10] as string, 16) ^ 1).toString(16)}${signed.signature.slice(11)}`;
      // Thunks: each verification starts when its outcome is read (no rejection waits unhandled).
      const strangers = (await sign(kind, stranger)).signature;
      const mutants: Record<string, () => Promise<unknown>> = {
        highSTwin: () => verifyAs(kind, withSignature(signed, `0x${r}${twinS}${otherV}`)),
        vZeroOrOne: () =>
          verifyAs(kind, withSignature(signed, `0x${r}${s.toString(16).padStart(64, "0")}0${v - 27}`)),
        otherV: () =>
          verifyAs(kind, withSignature(signed, `0x${r}${s.toString(16).padStart(64, "0")}${otherV}`)),
        flippedBit: () => verifyAs(kind, withSignature(signed, flipped)),
        resignedByStranger: () => verifyAs(kind, withSignature(signed, strangers)),
        otherKind: () => verifyAs(kind, { ...clone(signed), kind: kind === "Job" ? "Heartbeat" : "Job" }),
        otherChain: () => verifyAs(kind, { ...clone(signed), domain: { ...signed.domain, chainId: 1 } }),
        verifiedOnOtherChain: () => verifyAs(kind, clone(signed), { chainId: 1 }),
        otherDomain: () =>
          verifyAs(kind, { ...clone(signed), domain: { ...signed.domain, name: "not-gbt" } }),
      };
      if ((kinds[kind] as { audienceField?: string }).audienceField !== undefined) {
        mutants.otherAudience = () => verifyAs(kind, clone(signed), { audience: stranger.address });
      }
      if ("expiresAt" in messageOf(kind, signer.address)) {
        const expiresAt = messageOf(kind, signer.address).expiresAt as number;
        mutants.expired = () => verifyAs(kind, clone(signed), { now: (expiresAt + 31) * 1000 });
      }
      if ((kinds[kind] as { payloadHashField?: string }).payloadHashField !== undefined) {
        mutants.otherPayload = () => verifyAs(kind, { ...clone(signed), payload: { swapped: true } });
      }
      results[kind] = {};
      for (const [name, run] of Object.entries(mutants)) {
        (results[kind] as Record<string, string>)[name] = await outcome(run());
      }
    }
    const accepted = Object.entries(results).flatMap(([kind, byMutant]) =>
      Object.entries(byMutant)
        .filter(([, code]) => code === "ACCEPTED")
        .map(([mutant]) => `${kind}.${mutant}`),
    );
    expect(accepted).toEqual([]);
    const total = Object.values(results).reduce((sum, byMutant) => sum + Object.keys(byMutant).length, 0);
    expect(total).toBeGreaterThanOrEqual(kindNames.length * 9);
    console.log(`signature mutants: ${total} tried, ${accepted.length} accepted`);
    // The codes say why: malleated and forged signatures are signature_invalid, the rest their own.
    for (const byMutant of Object.values(results)) {
      expect(byMutant.highSTwin).toBe("SIGNATURE_INVALID");
      expect(byMutant.otherV).toBe("SIGNATURE_INVALID");
      expect(byMutant.otherChain).toBe("WRONG_CHAIN");
      expect(byMutant.otherDomain).toBe("WRONG_DOMAIN");
      expect(byMutant.otherKind).toBe("INVALID_OBJECT");
      if (byMutant.otherAudience !== undefined) expect(byMutant.otherAudience).toBe("WRONG_AUDIENCE");
      if (byMutant.expired !== undefined) expect(byMutant.expired).toBe("EXPIRED");
    }
  });
});
