/**
 * The node's agent: opens the agent's stores (replay database, audit log), unlocks the node key
 * and creates the @gbt/agent executor with this node's JobHandlers. The handlers give the
 * allowlisted executors the real node: its status, the server's drain switch, config.json, and its
 * models and services (model-handlers.ts). `startNode()` composes it with the server and the link.
 */
import { join } from "node:path";
import {
  type Agent,
  type AgentDatabase,
  type AgentEndpoint,
  type AuditLog,
  createAgent,
  createExecutableAllowlist,
  defaultAuditLogPath,
  type JobHandlers,
  openAgentDatabase,
  openAuditLog,
  runFixedCommand,
} from "@gbt/agent";
import { GbtError } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Logger } from "pino";
import type { Address } from "viem";
import type { Backend } from "../backends/types.js";
import { runNodeBenchmark } from "../benchmark/run-benchmark.js";
import { loadConfig, nodeConfigSchema, saveConfig } from "../config.js";
import { detectBackends } from "../detect-backends.js";
import { probeHardware } from "../hardware.js";
import { loadNodeAccount } from "../identity.js";
import { nodeLogFile, tailLogFile } from "../node-log.js";
import type { RunningNode } from "../serve.js";
import { nodeStatus } from "../status.js";
import { modelJobHandlers } from "./model-handlers.js";

export interface NodeAgentParameters {
  paths: GbtPaths;
  logger: Logger;
  /** Unlocks an encrypted node key. */
  passphrase?: string;
}

export interface NodeAgent {
  /** What the node server is given for `/agent/jobs`. */
  endpoint: AgentEndpoint;
  /** Connects the handlers to the node once it serves (jobs before that fail their preflight). */
  attach(node: RunningNode): void;
  /** Reads the owners from the config again (a claim just recorded one). */
  reloadOwners(): Promise<void>;
  close(): void;
}

/** The agent's database under the node's data directory. */
export function defaultAgentDatabasePath(dataDir: string): string {
  return join(dataDir, "agent", "agent.db");
}

/** Opens the agent's stores, unlocks the node key and creates the agent with the node's handlers. */
export async function openNodeAgent(parameters: NodeAgentParameters): Promise<NodeAgent> {
  const { paths, logger } = parameters;
  const config = await loadConfig(paths.configFile);
  const account = await loadNodeAccount(paths.nodeKeystore, parameters.passphrase);
  if (account.address.toLowerCase() !== config.node.address.toLowerCase()) {
    throw new GbtError(
      "CONFIG_INVALID",
      `The config names node ${config.node.address}, but the keystore holds ${account.address}.`,
      { hint: "Run `gbt setup` again so that the config and the key agree." },
    );
  }
  let owners = config.node.owners as Address[];
  let node: RunningNode | undefined;
  const running = (): RunningNode => {
    if (!node) throw new GbtError("PREFLIGHT_FAILED", "The node server is not started yet.");
    return node;
  };

  const handlers: JobHandlers = {
    async status() {
      const current = running();
      const [profile, health, models, gpus] = await Promise.all([
        nodeStatus({
          paths,
          probeHardware: () => probeHardware({ dataDir: paths.dataDir }),
          detectBackends: () => detectBackends({}),
        }),
        current.backend.health(),
        current.backend.listModels(),
        queryGpus(paths.dataDir),
      ]);
      return {
        ...profile,
        gpus,
        server: {
          url: current.server.url,
          inFlight: current.server.inFlight(),
          draining: current.server.isDraining(),
        },
        backend: {
          kind: current.backend.kind,
          location: current.backend.location,
          health,
          models: models.map((m) => ({ id: m.id, ...(m.digest ? { digest: m.digest } : {}) })),
        },
      };
    },
    async drain() {
      running().server.setDraining(true);
    },
    async resume() {
      running().server.setDraining(false);
    },
    isDraining: () => running().server.isDraining(),
    async readConfig() {
      return { ...(await loadConfig(paths.configFile)) };
    },
    async writeConfig(next) {
      const parsed = nodeConfigSchema.safeParse(next);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new GbtError(
          "CONFIG_INVALID",
          `The new config is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "malformed"}.`,
        );
      }
      await saveConfig(paths.configFile, parsed.data);
      owners = parsed.data.node.owners as Address[];
    },
    // VRAM bands of registry manifests are checked against the GPU the node runs on (0 on the CPU).
    ...modelJobHandlers(paths, running, {
      vramMiB: async () => {
        const gpu = running().gpu;
        if (gpu === undefined) return null;
        return gpu.backend === "cpu" ? 0 : gpu.vramTotalMB;
      },
    }),
    async runBenchmark(options) {
      const current = running();
      const [first] = await current.backend.listModels();
      const result = await runNodeBenchmark({
        paths,
        mode: options.mode,
        ...(options.genTokens !== undefined ? { genTokens: options.genTokens } : {}),
        ...(options.promptTokens !== undefined ? { promptTokens: options.promptTokens } : {}),
        ...(parameters.passphrase !== undefined ? { passphrase: parameters.passphrase } : {}),
        // Measure the backend the node serves with, as it is: the benchmark must not close it.
        buildBackend: async () => ({
          backend: withoutClose(current.backend),
          defaultModel: first?.id,
        }),
      });
      const record = result.signed.payload;
      const results = record.results as { ttftMs?: { p50?: number } };
      return {
        recordId: record.recordId,
        mode: record.mode,
        model: record.model.id,
        decodeTokPerSec: record.verdicts.decodeTokPerSec,
        ttftMsP50: results.ttftMs?.p50 ?? null,
        meetsFloor: record.verdicts.meetsFloor,
        eligibleCapacity: record.verdicts.eligibleCapacity,
        warnings: record.warnings,
      };
    },
    async tailLogs(lines) {
      return tailLogFile(nodeLogFile(paths), lines);
    },
  };

  const allowlist = createExecutableAllowlist();
  let db: AgentDatabase | undefined;
  let auditLog: AuditLog | undefined;
  let agent: Agent;
  try {
    db = openAgentDatabase(defaultAgentDatabasePath(paths.dataDir));
    auditLog = openAuditLog(defaultAuditLogPath(paths.dataDir));
    agent = createAgent({
      db,
      auditLog,
      account,
      chainId: config.node.chainId,
      owners: () => owners,
      allowlist,
      handlers,
      logger: logger.child({ component: "agent" }),
    });
  } catch (error) {
    auditLog?.close();
    db?.close();
    throw error;
  }
  const openDb = db;
  const openLog = auditLog;
  return {
    // The agent publishes its allowlist with this node and chain: a client binds its jobs to them.
    endpoint: agent,
    attach(started) {
      node = started;
    },
    async reloadOwners() {
      owners = (await loadConfig(paths.configFile)).node.owners as Address[];
    },
    close() {
      openLog.close();
      openDb.close();
    },
  };
}

/** The backend with a no-op close, for code that owns and closes the backends it is given. */
function withoutClose(backend: Backend): Backend {
  return new Proxy(backend, {
    get: (target, property, receiver) =>
      property === "close" ? async () => undefined : Reflect.get(target, property, receiver),
  });
}

/** One GPU as nvidia-smi reports it. */
interface GpuReading {
  name: string;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  utilizationPct: number | null;
  temperatureC: number | null;
}

/**
 * Live GPU readings for status.read through the fixed `gpu.query` command; null when the node has
 * no nvidia-smi, and `{ error }` when it has one that fails (a status report never fails for it).
 */
async function queryGpus(dataDir: string): Promise<GpuReading[] | null | { error: string }> {
  try {
    const { stdout } = await runFixedCommand("gpu.query", { dataDir });
    const number = (text: string | undefined) => {
      const value = Number.parseFloat(text ?? "");
      return Number.isFinite(value) ? value : null;
    };
    return stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .slice(0, 64)
      .map((line) => {
        const [name, total, used, utilization, temperature] = line.split(",").map((field) => field.trim());
        return {
          name: (name ?? "").slice(0, 128),
          memoryTotalMiB: number(total),
          memoryUsedMiB: number(used),
          utilizationPct: number(utilization),
          temperatureC: number(temperature),
        };
      });
  } catch (error) {
    if ((error as { code?: string }).code === "PREFLIGHT_FAILED") return null;
    return { error: (error as Error).message };
  }
}
