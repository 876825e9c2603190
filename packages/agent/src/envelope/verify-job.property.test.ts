/**
 * Property: no mutation of a valid signed job verifies. A seeded PRNG mutates one valid job in many
 * ways (signature bytes, every message field, params keys and values, the payload, the domain, the
 * envelope's own keys); every mutant must be rejected with a GbtError and nothing recorded, while
 * the original still verifies afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALLOWLIST_VERSION, GbtError, type SignedObject, seededRandom, signObject } from "@gbt/protocol";
import { bytesToHex, hexToBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { createAllowlist } from "../allowlist/index.js";
import { createReplayStore } from "./replay-store.js";
import { type VerifyJobContext, verifyJobEnvelope } from "./verify-job.js";

const MUTANTS = 600;
const CHAIN_ID = 84532;
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
const node = privateKeyToAccount(`0x${"44".repeat(32)}`);
const other = privateKeyToAccount(`0x${"66".repeat(32)}`);

type Wire = Record<string, unknown> & {
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
  payload?: unknown;
  signature: string;
};

/** The job's params as a mutable object (an earlier mutation may have dropped or replaced them). */
function paramsOf(job: Wire): Record<string, unknown> {
  if (typeof job.payload !== "object" || job.payload === null) job.payload = {};
  return job.payload as Record<string, unknown>;
}

type Mutation = (job: Wire, random: () => number) => void;

const pick = <T>(items: readonly T[], random: () => number): T =>
  items[Math.floor(random() * items.length)] as T;
const delta = (random: () => number) => (random() < 0.5 ? -1 : 1) * (1 + Math.floor(random() * 1000));

const otherValues: Record<string, readonly unknown[]> = {
  schemaVersion: [0, 2, "1", null],
  jobId: ["4b2a2f0e-6a1b-4c1d-9e8f-0a1b2c3d4e5f", "not-a-uuid", "", 1],
  node: [other.address, owner.address, "0x0000000000000000000000000000000000000000", "node"],
  issuer: [other.address, node.address, "0xdeadbeef"],
  type: ["model.remove", "model.switch", "status.read", "shell.exec", "model.pull ", ""],
  paramsHash: [`0x${"00".repeat(32)}`, `0x${"ff".repeat(32)}`, "0x1234"],
  nonce: [0, -1, 1.5, "7", null],
  notBefore: [0, null, "now"],
  expiresAt: [0, 2 ** 41, null],
  allowlistVersion: [0, ALLOWLIST_VERSION + 1, "1"],
};

const mutations: readonly [string, Mutation][] = [
  [
    "flip a signature byte",
    (job, random) => {
      const bytes = hexToBytes(job.signature as `0x${string}`);
      const i = Math.floor(random() * bytes.length);
      bytes[i] = (bytes[i] ?? 0) ^ (1 + Math.floor(random() * 255));
      job.signature = bytesToHex(bytes);
    },
  ],
  [
    "truncate the signature",
    (job, random) => {
      job.signature = job.signature.slice(0, 2 + 2 * Math.floor(random() * 65));
    },
  ],
  [
    "shift a numeric message field",
    (job, random) => {
      const field = pick(["nonce", "notBefore", "expiresAt", "allowlistVersion", "schemaVersion"], random);
      const value = typeof job.message[field] === "number" ? (job.message[field] as number) : 0;
      job.message[field] = Math.max(0, value + delta(random)) || value + 1;
    },
  ],
  [
    "replace a message field",
    (job, random) => {
      const field = pick(Object.keys(otherValues), random);
      job.message[field] = pick(otherValues[field] ?? [], random);
    },
  ],
  [
    "remove a message field",
    (job, random) => {
      delete job.message[pick(Object.keys(job.message), random)];
    },
  ],
  [
    "add a message field",
    (job) => {
      job.message.extra = 1;
    },
  ],
  [
    "change a params value",
    (job, random) => {
      paramsOf(job).model = pick(["qwen2.5:7b", "llama3.1:70b", "", 7], random);
    },
  ],
  [
    "add a params key",
    (job, random) => {
      paramsOf(job)[pick(["force", "path", "cmd", "__proto__x"], random)] = "x";
    },
  ],
  [
    "remove a params key",
    (job) => {
      delete paramsOf(job).model;
    },
  ],
  [
    "swap the payload",
    (job, random) => {
      job.payload = pick([{}, { model: "qwen2.5:7b" }, { service: "backend" }, null, []], random);
    },
  ],
  [
    "drop the payload",
    (job) => {
      delete job.payload;
    },
  ],
  [
    "change the domain",
    (job, random) => {
      const change = pick(["name", "version", "chainId", "verifyingContract", "extra"], random);
      if (change === "name") job.domain.name = pick(["GBT", "evil", ""], random);
      else if (change === "version") job.domain.version = pick(["2", "0", ""], random);
      else if (change === "chainId") job.domain.chainId = pick([1, CHAIN_ID + 1, 8453], random);
      else if (change === "verifyingContract") job.domain.verifyingContract = other.address;
      else job.domain.salt = "0x00";
    },
  ],
  [
    "change the kind",
    (job, random) => {
      job.kind = pick(["JobResult", "UsageReceipt", "job"], random);
    },
  ],
  [
    "add an envelope key",
    (job) => {
      job.extra = true;
    },
  ],
];

describe("no mutant of a valid job verifies", () => {
  let dir: string;
  let db: AgentDatabase;
  let ctx: VerifyJobContext;
  let original: SignedObject<"Job">;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gbt-agent-mutants-"));
    db = openAgentDatabase(join(dir, "agent.db"));
    ctx = {
      node: node.address,
      chainId: CHAIN_ID,
      owners: [owner.address],
      allowlist: createAllowlist(),
      replay: createReplayStore(db, () => NOW_MS),
      now: () => NOW_MS,
    };
    original = await signObject(owner, {
      kind: "Job",
      chainId: CHAIN_ID,
      message: {
        jobId: "0f8c7c2e-3f0a-4d6b-8a47-6d0d3e9b1c21",
        node: node.address,
        issuer: owner.address,
        type: "model.pull",
        nonce: 42,
        notBefore: NOW - 5,
        expiresAt: NOW + 300,
        allowlistVersion: ALLOWLIST_VERSION,
      },
      payload: { model: "llama3.1:8b" },
    });
  });
  afterAll(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`rejects ${MUTANTS} random mutants, then accepts the original`, async () => {
    const random = seededRandom(0x6b7);
    let executed = 0;
    const rejectedBy = new Map<string, number>();
    for (let i = 0; i < MUTANTS; i++) {
      const mutant = JSON.parse(JSON.stringify(original)) as Wire;
      const [name, mutate] = pick(mutations, random);
      mutate(mutant, random);
      if (random() < 0.25) pick(mutations, random)[1](mutant, random);
      try {
        await verifyJobEnvelope(mutant, ctx);
        executed++;
      } catch (error) {
        expect(error, `mutant ${i} (${name})`).toBeInstanceOf(GbtError);
        const code = (error as GbtError).code;
        rejectedBy.set(code, (rejectedBy.get(code) ?? 0) + 1);
      }
    }
    expect(executed).toBe(0);
    expect(db.prepare("SELECT count(*) AS n FROM seen_jobs").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT count(*) AS n FROM issuer_nonces").get()).toEqual({ n: 0 });
    // The mutants exercised many distinct checks, not one.
    expect(rejectedBy.size).toBeGreaterThanOrEqual(6);

    const verified = await verifyJobEnvelope(JSON.parse(JSON.stringify(original)), ctx);
    expect(verified.duplicate).toBe(false);
  });
});
