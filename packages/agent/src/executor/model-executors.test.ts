import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GbtError, type SignedObject, signObject } from "@gbt/protocol";
import type { Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentDatabase, openAgentDatabase } from "../agent-database.js";
import { ALLOWLIST_VERSION } from "../allowlist/job-types.js";
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
  };
  const handlers: JobHandlers = {
    status: async () => ({}),
    drain: async () => undefined,
    resume: async () => undefined,
    isDraining: () => false,
    readConfig: async () => ({}),
    writeConfig: async () => undefined,
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
});
