import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALLOWLIST_VERSION, GbtError, type SignedObject, signObject } from "@gbt/protocol";
import type { Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { type AuditLog, openAuditLog } from "../audit/audit-log.js";
import { type Agent, createAgent } from "./agent.js";
import type { JobHandlers } from "./handlers.js";
import { createExecutableAllowlist } from "./job-executors.js";

const CHAIN_ID = 84532;
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
const node = privateKeyToAccount(`0x${"44".repeat(32)}`);

let nextNonce = 1;
function signJob(type: string, payload: unknown): Promise<SignedObject<"Job">> {
  return signObject(owner, {
    kind: "Job",
    chainId: CHAIN_ID,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: owner.address,
      type,
      nonce: nextNonce++,
      notBefore: NOW - 5,
      expiresAt: NOW + 300,
      allowlistVersion: ALLOWLIST_VERSION,
    },
    payload,
  });
}

/** A node in memory with served models, files in its models dir, and generatable test models. */
function modelNode() {
  const state = {
    served: ["gbt-test-tiny"],
    files: new Set(["gbt-test-tiny", "local-model"]),
    generatable: new Set(["gbt-test-tiny", "gbt-test-small"]),
    healthy: true,
    /** A pull that reports success but serves nothing (for verify failures). */
    pullServesNothing: false,
    restarts: [] as string[],
    config: { node: { mode: "managed" }, backend: { kind: "embedded", model: "gbt-test-tiny" } } as Record<
      string,
      unknown
    >,
    configWrites: 0,
    /** Fails the config write (for rollback checks). */
    failConfigWrite: false,
    benchmarks: [] as unknown[],
    log: [] as string[],
  };
  const handlers: JobHandlers = {
    status: async () => ({}),
    drain: async () => undefined,
    resume: async () => undefined,
    isDraining: () => false,
    readConfig: async () => structuredClone(state.config),
    async writeConfig(next) {
      if (state.failConfigWrite) throw new GbtError("CONFIG_INVALID", "disk full");
      state.configWrites += 1;
      state.config = structuredClone(next);
    },
    hasModel: async (model) => state.served.includes(model) || state.files.has(model),
    async runBenchmark(options) {
      state.benchmarks.push(options);
      return {
        recordId: "rec-1",
        mode: options.mode,
        model: state.served[0] ?? "none",
        decodeTokPerSec: 1234.5,
        ttftMsP50: 2.5,
        meetsFloor: true,
        eligibleCapacity: 1,
        warnings: [],
      };
    },
    tailLogs: async (lines) => state.log.slice(-lines),
    listModels: async () => [...state.served],
    async checkPullSource(model) {
      if (!state.files.has(model) && !state.generatable.has(model))
        throw new GbtError("PREFLIGHT_FAILED", `No model ${model}.`);
    },
    async pullModel(model) {
      const createdFile = !state.files.has(model);
      state.files.add(model);
      if (!state.pullServesNothing && !state.served.includes(model)) state.served.push(model);
      return { createdFile };
    },
    async unloadModel(model) {
      state.served = state.served.filter((id) => id !== model);
    },
    async deleteModelFile(model) {
      return state.files.delete(model);
    },
    async restartService(service) {
      state.restarts.push(service);
    },
    backendHealth: async () => ({ ok: state.healthy }),
  };
  return { state, handlers };
}

describe("model and service executors", () => {
  let dir: string;
  let db: AgentDatabase;
  let auditLog: AuditLog;
  let memory: ReturnType<typeof modelNode>;
  let agent: Agent;

  function agentWith(handlers: JobHandlers): Agent {
    return createAgent({
      db,
      auditLog,
      account: node,
      chainId: CHAIN_ID,
      owners: (): readonly Address[] => [owner.address],
      allowlist: createExecutableAllowlist(),
      handlers,
      now: () => NOW_MS,
    });
  }

  async function run(type: string, params: unknown, on = agent) {
    return on.submit(JSON.parse(JSON.stringify(await signJob(type, params))));
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gbt-agent-model-"));
    db = openAgentDatabase(join(dir, "agent.db"));
    auditLog = openAuditLog(join(dir, "audit.db"), { now: () => NOW_MS });
    memory = modelNode();
    agent = agentWith(memory.handlers);
  });
  afterEach(() => {
    expect(auditLog.verify()).toMatchObject({ ok: true });
    auditLog.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("model.pull generates a test model and serves it", async () => {
    const outcome = await run("model.pull", { model: "gbt-test-small" });
    expect(outcome).toMatchObject({
      state: "succeeded",
      output: { model: "gbt-test-small", createdFile: true, alreadyServed: false },
    });
    expect(memory.state.served).toEqual(["gbt-test-tiny", "gbt-test-small"]);
  });

  it("model.pull reports its progress while it runs: the job's status shows the latest", async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const withProgress = agentWith({
      ...memory.handlers,
      async pullModel(model, options) {
        options?.onProgress?.({ phase: "download", bytes: 512, totalBytes: 2048 });
        await held;
        return memory.handlers.pullModel?.(model) ?? { createdFile: false };
      },
    });
    const signed = JSON.parse(JSON.stringify(await signJob("model.pull", { model: "gbt-test-small" })));
    const done = withProgress.submit(signed);
    await expect
      .poll(() => withProgress.status(signed.message.jobId))
      .toMatchObject({ state: "running", progress: { phase: "download", bytes: 512, totalBytes: 2048 } });
    release();
    const outcome = await done;
    expect(outcome.state).toBe("succeeded");
    expect(withProgress.status(signed.message.jobId)).not.toHaveProperty("progress");
  });

  it("model.pull fails its preflight for an unknown source, touching nothing", async () => {
    const outcome = await run("model.pull", { model: "nowhere" });
    expect(outcome).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(outcome.message).toContain("No model nowhere");
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
  });

  it("model.pull rejects a path outside the models dir before running", async () => {
    const outcome = await run("model.pull", { model: "../../etc/passwd" });
    expect(outcome).toMatchObject({ state: "rejected", code: "INVALID_PARAMS" });
  });

  it("model.pull rolls back (unserves and deletes the file it wrote) when verify fails", async () => {
    memory.state.pullServesNothing = true;
    const outcome = await run("model.pull", { model: "gbt-test-small" });
    expect(outcome).toMatchObject({ state: "rolled_back", code: "CONFLICT" });
    expect(memory.state.files.has("gbt-test-small")).toBe(false);
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
  });

  it("model.pull of a source serves the id the node reports, passes as/sha256, and rolls back that id", async () => {
    const calls: unknown[] = [];
    const sourced: JobHandlers = {
      ...memory.handlers,
      async checkPullSource(model, options) {
        calls.push(["check", model, options]);
        return { id: options?.as ?? "tiny-chat" };
      },
      async pullModel(model, options) {
        calls.push(["pull", model, options]);
        const id = options?.as ?? "tiny-chat";
        memory.state.files.add(id);
        if (!memory.state.pullServesNothing) memory.state.served.push(id);
        return { createdFile: true, id };
      },
    };
    const sourcedAgent = agentWith(sourced);
    const ok = await run("model.pull", { model: "tiny-chat@1.0.0" }, sourcedAgent);
    expect(ok).toMatchObject({
      state: "succeeded",
      output: { model: "tiny-chat", source: "tiny-chat@1.0.0", createdFile: true },
    });
    const sha256 = "ab".repeat(32);
    memory.state.pullServesNothing = true;
    const rolledBack = await run(
      "model.pull",
      { model: "https://example.com/m.gguf", as: "m", sha256 },
      sourcedAgent,
    );
    expect(rolledBack).toMatchObject({ state: "rolled_back" });
    expect(memory.state.files.has("m")).toBe(false);
    expect(calls).toContainEqual([
      "pull",
      "https://example.com/m.gguf",
      { as: "m", sha256, onProgress: expect.any(Function) },
    ]);
  });

  it("model.pull's policy refuses plain http and a bare URL without sha256 before running", async () => {
    const http = await run("model.pull", { model: "http://example.com/m.gguf", sha256: "ab".repeat(32) });
    expect(http).toMatchObject({ state: "rejected", code: "POLICY_DENIED" });
    const bare = await run("model.pull", { model: "https://example.com/m.gguf" });
    expect(bare).toMatchObject({ state: "rejected", code: "POLICY_DENIED" });
    expect(bare.message).toContain("sha256");
  });

  it("model.switch asks the node whether the model fits before switching", async () => {
    const fitting: JobHandlers = {
      ...memory.handlers,
      async checkModelFits(model) {
        throw new GbtError("PREFLIGHT_FAILED", `${model}@1.0.0 needs 24 GiB VRAM, this node has 8.`);
      },
    };
    const outcome = await run("model.switch", { model: "local-model" }, agentWith(fitting));
    expect(outcome).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(outcome.message).toContain("needs 24 GiB VRAM, this node has 8");
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
  });

  it("model.pull fails its preflight on a node without model handlers", async () => {
    const { listModels: _l, checkPullSource: _c, pullModel: _p, ...bare } = memory.handlers;
    const outcome = await run("model.pull", { model: "gbt-test-small" }, agentWith(bare));
    expect(outcome).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(outcome.message).toContain("not supported on this node");
  });

  it("model.remove refuses the only served model and unknown models", async () => {
    const only = await run("model.remove", { model: "gbt-test-tiny" });
    expect(only).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(only.message).toContain("only model");
    const unknown = await run("model.remove", { model: "local-model" });
    expect(unknown).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(memory.state.files.has("gbt-test-tiny")).toBe(true);
  });

  it("model.remove unserves a model, then deletes its file", async () => {
    await run("model.pull", { model: "local-model" });
    const outcome = await run("model.remove", { model: "local-model" });
    expect(outcome).toMatchObject({
      state: "succeeded",
      output: { model: "local-model", deletedFile: true },
    });
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
    expect(memory.state.files.has("local-model")).toBe(false);
  });

  it("service.restart restarts the named service and checks health and models", async () => {
    const outcome = await run("service.restart", { service: "backend" });
    expect(outcome).toMatchObject({
      state: "succeeded",
      output: { service: "backend", models: ["gbt-test-tiny"] },
    });
    expect(memory.state.restarts).toEqual(["backend"]);
  });

  it("service.restart fails when the backend is unhealthy afterwards", async () => {
    memory.state.healthy = false;
    const outcome = await run("service.restart", { service: "server" });
    expect(outcome).toMatchObject({ state: "rolled_back", code: "BACKEND_UNREACHABLE" });
  });

  it("model.switch serves the new model only, makes it the default, and states the anti-flapping cost", async () => {
    const outcome = await run("model.switch", { model: "local-model" });
    expect(outcome).toMatchObject({
      state: "succeeded",
      output: {
        model: "local-model",
        previous: ["gbt-test-tiny"],
        unloaded: ["gbt-test-tiny"],
        antiFlapping: {
          applies: true,
          payoutMultiplierAfterSwitch: 0.5,
          recoveryHours: 72,
          lostEarningsHours: 18,
        },
      },
    });
    expect(memory.state.served).toEqual(["local-model"]);
    expect(memory.state.config).toMatchObject({ backend: { model: "local-model" } });
    // Files are never deleted by a switch.
    expect(memory.state.files.has("gbt-test-tiny")).toBe(true);
  });

  it("model.switch on a local-mode node says the penalty does not apply", async () => {
    memory.state.config = { node: { mode: "local" }, backend: {} };
    const outcome = await run("model.switch", { model: "local-model" });
    expect(outcome).toMatchObject({ state: "succeeded", output: { antiFlapping: { applies: false } } });
  });

  it("model.switch refuses a model that is not on the node, and a switch to what it already serves", async () => {
    const missing = await run("model.switch", { model: "gbt-test-small" });
    expect(missing).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(missing.message).toContain("not on this node");
    const same = await run("model.switch", { model: "gbt-test-tiny" });
    expect(same).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
    expect(memory.state.configWrites).toBe(0);
  });

  it("model.switch rolls back to the previous models and config when a step fails", async () => {
    memory.state.failConfigWrite = true;
    const before = structuredClone(memory.state.config);
    const outcome = await run("model.switch", { model: "local-model" });
    expect(outcome).toMatchObject({ state: "rolled_back", code: "CONFIG_INVALID" });
    expect(memory.state.served).toEqual(["gbt-test-tiny"]);
    expect(memory.state.config).toEqual(before);
  });

  it("benchmark.run runs on a healthy backend with the job's parameters and answers the record summary", async () => {
    const outcome = await run("benchmark.run", { genTokens: 16 });
    expect(outcome).toMatchObject({
      state: "succeeded",
      output: { recordId: "rec-1", mode: "micro", decodeTokPerSec: 1234.5 },
    });
    expect(memory.state.benchmarks).toEqual([{ mode: "micro", genTokens: 16 }]);
    memory.state.healthy = false;
    const unhealthy = await run("benchmark.run", { mode: "serve" });
    expect(unhealthy).toMatchObject({ state: "failed", code: "PREFLIGHT_FAILED" });
    expect(memory.state.benchmarks).toHaveLength(1);
  });

  it("benchmark.run rejects out-of-range parameters before running", async () => {
    const outcome = await run("benchmark.run", { genTokens: 100_000 });
    expect(outcome).toMatchObject({ state: "rejected", code: "INVALID_PARAMS" });
    expect(memory.state.benchmarks).toHaveLength(0);
  });

  it("logs.tail answers the last lines, redacted, clipped and bounded", async () => {
    memory.state.log = [
      ...Array.from({ length: 80 }, (_, i) => `{"level":30,"msg":"line ${i}"}`),
      '{"level":30,"linkToken":"abcdef0123456789","msg":"registered"}',
      "authorization: Bearer gbt_gk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      `{"msg":"${"x".repeat(5_000)}"}`,
    ];
    const outcome = await run("logs.tail", { lines: 4 });
    expect(outcome.state).toBe("succeeded");
    const output = outcome.output as {
      lines: string[];
      count: number;
      redactions: number;
      truncated: number;
    };
    expect(output.count).toBe(4);
    expect(output.lines[0]).toContain("line 79");
    expect(output.lines[1]).toBe('{"level":30,"linkToken":"[REDACTED]","msg":"registered"}');
    expect(output.lines[2]).not.toContain("gbt_gk_");
    expect(output.lines[3]?.length).toBeLessThan(2_100);
    expect(output).toMatchObject({ redactions: 2, truncated: 1 });
    const all = await run("logs.tail", {});
    expect((all.output as { count: number }).count).toBe(50);
    expect((await run("logs.tail", { lines: 501 })).code).toBe("INVALID_PARAMS");
  });
});
