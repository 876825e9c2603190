import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALLOWLIST_VERSION, type SignedObject, signObject, verifyJobResult } from "@gbt/protocol";
import { type Address, bytesToHex, hexToBytes } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { createAllowlist } from "../allowlist/allowlist-registry.js";
import { jobTypes } from "../allowlist/job-types.js";
import { type AuditLog, openAuditLog } from "../audit/audit-log.js";
import { type Agent, createAgent, STRANGER_AUDITS_PER_HOUR } from "./agent.js";
import type { JobHandlers } from "./handlers.js";
import { createExecutableAllowlist, executableJobTypes, jobExecutors } from "./job-executors.js";

const CHAIN_ID = 84532;
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
const secondOwner = privateKeyToAccount(`0x${"22".repeat(32)}`);
const newcomer = privateKeyToAccount(`0x${"33".repeat(32)}`);
const node = privateKeyToAccount(`0x${"44".repeat(32)}`);

let nextNonce = 1;
function signJob(type: string, payload: unknown, signer = owner): Promise<SignedObject<"Job">> {
  return signObject(signer, {
    kind: "Job",
    chainId: CHAIN_ID,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: signer.address,
      type,
      nonce: nextNonce++,
      notBefore: NOW - 5,
      expiresAt: NOW + 300,
      allowlistVersion: ALLOWLIST_VERSION,
    },
    payload,
  });
}

/** The wire form, as a sender would transmit it. */
function wire(signed: unknown): unknown {
  return JSON.parse(JSON.stringify(signed));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A node in memory: counts calls, can be slow, and can alter what it writes (a clamp). */
function memoryNode(initial: Record<string, unknown> = {}) {
  const state = {
    config: structuredClone(initial),
    draining: false,
    delayMs: 0,
    statusCalls: 0,
    drainCalls: 0,
    active: 0,
    maxActive: 0,
    clamp: (config: Record<string, unknown>) => config,
  };
  async function slow<T>(work: () => T): Promise<T> {
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    try {
      await sleep(state.delayMs);
      return work();
    } finally {
      state.active--;
    }
  }
  const handlers: JobHandlers = {
    async status() {
      state.statusCalls++;
      return { backend: "ollama", draining: state.draining };
    },
    drain: () =>
      slow(() => {
        state.drainCalls++;
        state.draining = true;
      }),
    resume: () =>
      slow(() => {
        state.draining = false;
      }),
    isDraining: () => state.draining,
    readConfig: () => slow(() => structuredClone(state.config)),
    writeConfig: (next) =>
      slow(() => {
        state.config = state.clamp(structuredClone(next));
      }),
  };
  return { state, handlers };
}

describe("createAgent", () => {
  let dir: string;
  let db: AgentDatabase;
  let auditLog: AuditLog;
  let memory: ReturnType<typeof memoryNode>;
  let agent: Agent;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gbt-agent-executor-"));
    db = openAgentDatabase(join(dir, "agent.db"));
    auditLog = openAuditLog(join(dir, "audit.db"), { now: () => NOW_MS });
    memory = memoryNode({ backend: { threads: 8 } });
    agent = createAgent({
      db,
      auditLog,
      account: node,
      chainId: CHAIN_ID,
      owners: (): readonly Address[] => [owner.address, secondOwner.address],
      allowlist: createExecutableAllowlist(),
      handlers: memory.handlers,
      now: () => NOW_MS,
    });
  });
  afterEach(() => {
    expect(auditLog.verify()).toMatchObject({ ok: true });
    auditLog.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("publishes its allowlist with the node and chain its jobs must be bound to", () => {
    const published = agent.allowlist();
    expect(published).toMatchObject({ version: ALLOWLIST_VERSION, node: node.address, chainId: CHAIN_ID });
    expect(published.types.map((t) => t.type)).toContain("status.read");
  });

  it("runs a signed status.read and answers with a verifiable signed JobResult", async () => {
    const signed = await signJob("status.read", {});
    const outcome = await agent.submit(Buffer.from(JSON.stringify(signed)));
    expect(outcome).toMatchObject({
      state: "succeeded",
      states: ["received", "verified", "preflight", "running", "succeeded"],
      output: { backend: "ollama", draining: false },
    });
    const result = await verifyJobResult(wire(outcome.result), { job: signed, now: () => NOW_MS });
    const entries = auditLog.list();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ jobId: signed.message.jobId, state: "succeeded", code: null });
    expect(result.message.auditHash).toBe(entries[0]?.hash);
    expect(result.payload).toEqual({ output: { backend: "ollama", draining: false } });
    expect(agent.status(signed.message.jobId)).toEqual(wire(outcome));
  });

  it("answers a duplicate delivery with the stored result without running again", async () => {
    const signed = await signJob("status.read", {});
    const first = await agent.submit(wire(signed));
    const again = await agent.submit(wire(signed));
    expect(again).toEqual(wire(first));
    expect(memory.state.statusCalls).toBe(1);
    expect(auditLog.count()).toBe(1);
  });

  it("neither audits nor signs a job whose signature does not recover to its issuer, and never runs it", async () => {
    const signed = await signJob("status.read", {});
    const bytes = hexToBytes(signed.signature);
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    const forged = { ...signed, signature: bytesToHex(bytes) };
    // The high-s twin of the real signature (it recovers to the issuer too; only canonical ones count).
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${signed.signature.slice(66, 130)}`);
    const v = Number.parseInt(signed.signature.slice(130), 16);
    const twin = `${signed.signature.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
    const highS = { ...signed, signature: twin };
    for (const body of [forged, highS, { ...signed, signature: "0x1234" }]) {
      const outcome = await agent.submit(wire(body));
      expect(outcome.state).toBe("rejected");
      expect(outcome.code).toMatch(/SIGNATURE_INVALID|INVALID_OBJECT/);
      expect(outcome.result).toBeUndefined();
    }
    expect(memory.state.statusCalls).toBe(0);
    expect(auditLog.count()).toBe(0);
    expect(agent.status(signed.message.jobId)).toBeNull();
  });

  it("neither audits nor signs a body that is not JSON, or not a Job", async () => {
    expect(await agent.submit(Buffer.from("{not json"))).toEqual({
      state: "rejected",
      code: "INVALID_OBJECT",
      message: "The job body is not JSON.",
    });
    const notJob = await agent.submit(wire({ kind: "Job", message: { jobId: "x" } }));
    expect(notJob).toMatchObject({ state: "rejected", code: "INVALID_OBJECT" });
    expect(notJob.result).toBeUndefined();
    expect(auditLog.count()).toBe(0);
  });

  it("answers a stranger's validly signed job unsigned, auditing at most the hourly bound of them", async () => {
    for (let i = 0; i < STRANGER_AUDITS_PER_HOUR + 5; i++) {
      const outcome = await agent.submit(wire(await signJob("node.drain", {}, newcomer)));
      expect(outcome).toMatchObject({ state: "rejected", code: "UNKNOWN_SIGNER" });
      expect(outcome.result).toBeUndefined();
    }
    expect(memory.state.drainCalls).toBe(0);
    expect(auditLog.count()).toBe(STRANGER_AUDITS_PER_HOUR);
    expect(auditLog.list({ limit: 1 })).toMatchObject([
      { issuer: newcomer.address, state: "rejected", code: "UNKNOWN_SIGNER" },
    ]);
  });

  it("audits an owner's rejected job and signs an answer bound to the envelope it received", async () => {
    const signed = await signJob("config.set", { key: "backend.threads", value: 16 });
    const altered = wire({ ...signed, payload: { key: "backend.threads", value: 1 } });
    const outcome = await agent.submit(altered);
    expect(outcome).toMatchObject({ state: "rejected", code: "PAYLOAD_HASH_MISMATCH" });
    expect(auditLog.list()).toMatchObject([
      { jobId: signed.message.jobId, state: "rejected", code: "PAYLOAD_HASH_MISMATCH" },
    ]);
    // The answer is the node's, to the copy it received: not an answer to the job the owner signed.
    const options = { now: () => NOW_MS };
    await expect(verifyJobResult(wire(outcome.result), { ...options, job: altered })).resolves.toBeTruthy();
    await expect(verifyJobResult(wire(outcome.result), { ...options, job: signed })).rejects.toMatchObject({
      code: "INVALID_OBJECT",
    });
    expect(memory.state.config).toEqual({ backend: { threads: 8 } });
  });

  it("runs jobs on the same resource one after another and on different resources in parallel", async () => {
    memory.state.delayMs = 20;
    const threads = await signJob("config.set", { key: "backend.threads", value: 16 }, owner);
    const capacity = await signJob("config.set", { key: "backend.capacity", value: 4 }, secondOwner);
    const outcomes = await Promise.all([agent.submit(wire(threads)), agent.submit(wire(capacity))]);
    expect(outcomes.map((outcome) => outcome.state)).toEqual(["succeeded", "succeeded"]);
    expect(memory.state.maxActive).toBe(1);
    // A lost update would show if the two read-modify-write sequences had interleaved.
    expect(memory.state.config).toEqual({ backend: { threads: 16, capacity: 4 } });

    memory.state.maxActive = 0;
    const port = await signJob("config.set", { key: "server.port", value: 8080 }, owner);
    const drain = await signJob("node.drain", { reason: "maintenance" }, secondOwner);
    const parallel = await Promise.all([agent.submit(wire(port)), agent.submit(wire(drain))]);
    expect(parallel.map((outcome) => outcome.state)).toEqual(["succeeded", "succeeded"]);
    expect(memory.state.maxActive).toBe(2);
  });

  it("rolls back a config.set whose verify fails and audits it as rolled_back", async () => {
    memory.state.clamp = (config) => {
      const backend = config.backend as { threads?: number } | undefined;
      if (backend?.threads !== undefined) backend.threads = Math.min(backend.threads, 64);
      return config;
    };
    const signed = await signJob("config.set", { key: "backend.threads", value: 128 });
    const outcome = await agent.submit(wire(signed));
    expect(outcome).toMatchObject({
      state: "rolled_back",
      code: "CONFLICT",
      states: ["received", "verified", "preflight", "running", "rolled_back"],
    });
    expect(memory.state.config).toEqual({ backend: { threads: 8 } });
    expect(auditLog.list()).toMatchObject([
      {
        state: "rolled_back",
        code: "CONFLICT",
        detail: { params: { key: "backend.threads", value: 128 } },
      },
    ]);
  });

  it("reports both errors and fails when the rollback itself fails", async () => {
    memory.state.clamp = (config) => {
      const backend = config.backend as { threads?: number } | undefined;
      if (backend?.threads === 8) throw new Error("disk full");
      if (backend?.threads !== undefined) backend.threads = Math.min(backend.threads, 64);
      return config;
    };
    const outcome = await agent.submit(
      wire(await signJob("config.set", { key: "backend.threads", value: 128 })),
    );
    expect(outcome).toMatchObject({ state: "failed", code: "CONFLICT" });
    expect(outcome.message).toMatch(/rollback failed too: disk full/);
    expect(auditLog.list()).toMatchObject([
      { state: "failed", code: "CONFLICT", detail: { rollbackError: { message: "disk full" } } },
    ]);
  });

  it("fails a drain of a drained node in preflight and changes nothing", async () => {
    memory.state.draining = true;
    const outcome = await agent.submit(wire(await signJob("node.drain", {})));
    expect(outcome).toMatchObject({
      state: "failed",
      code: "PREFLIGHT_FAILED",
      states: ["received", "verified", "preflight", "failed"],
    });
    expect(memory.state.drainCalls).toBe(0);
    expect(memory.state.draining).toBe(true);
    expect(auditLog.list()).toMatchObject([{ state: "failed", code: "PREFLIGHT_FAILED" }]);
  });

  it("fails an allowlisted type without an executor as not executable yet", async () => {
    // A node that knows a newer allowlist than it can execute: model.switch has no executor here.
    const { "model.switch": _switch, ...executors } = jobExecutors;
    const partial = createAgent({
      db,
      auditLog,
      account: node,
      chainId: CHAIN_ID,
      owners: (): readonly Address[] => [owner.address],
      allowlist: createAllowlist({ entries: executableJobTypes(jobTypes, executors) }),
      handlers: memory.handlers,
      now: () => NOW_MS,
    });
    const outcome = await partial.submit(wire(await signJob("model.switch", { model: "llama3.1:8b" })));
    expect(outcome).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(outcome.message).toMatch(/not executable on this node yet/);
  });

  it("adds and removes owners in the configuration", async () => {
    const added = await agent.submit(wire(await signJob("owner.add", { address: newcomer.address })));
    expect(added.state).toBe("succeeded");
    expect(memory.state.config.owners).toEqual([owner.address, secondOwner.address, newcomer.address]);
    const removed = await agent.submit(wire(await signJob("owner.remove", { address: secondOwner.address })));
    expect(removed.state).toBe("succeeded");
    expect(memory.state.config.owners).toEqual([owner.address, newcomer.address]);
  });
});
