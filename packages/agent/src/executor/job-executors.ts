/**
 * The executors of the job types this node can carry out today, attached to their allowlist
 * entries: each declares the resource it locks and its preflight, execute, verify and rollback
 * steps. Change types capture what they replace in preflight, so rollback puts it back exactly.
 * Types without executors stay allowlisted (they verify) but fail as not executable yet.
 */
import { GbtError, modelSwitchCost, schemas } from "@gbt/protocol";
import { type Address, isAddressEqual } from "viem";
import { z } from "zod";
import {
  type AllowlistEntryDefinition,
  type AllowlistRegistry,
  type CreateAllowlistOptions,
  createAllowlist,
} from "../allowlist/allowlist-registry.js";
import { jobTypes } from "../allowlist/job-types.js";
import type { JobHandlers, JobProgress, PullJobOptions } from "./handlers.js";
import { redactLogLine } from "./redact-log-line.js";

/** What every step of one job sees. */
export interface ExecutionContext {
  handlers: JobHandlers;
  /** Reports the running job's progress (the latest is what its status shows). */
  progress?: (progress: JobProgress) => void;
  /** The node's owners when the job was accepted. */
  owners: readonly Address[];
  /** Scratch space shared by one job's steps: what preflight saw, for verify and rollback. */
  memo: Record<string, unknown>;
}

/** A step as executors write it; execute's return value is the job's output. */
export type ExecutorStep<P = never> = (params: P, ctx: ExecutionContext) => Promise<unknown>;

/** The steps of one job type, and the resource it locks. */
export interface JobExecutor<P> {
  /** The lock this job holds while it runs. */
  resource: (params: P) => string;
  preflight?: ExecutorStep<P>;
  execute: ExecutorStep<P>;
  verify?: ExecutorStep<P>;
  rollback?: ExecutorStep<P>;
}

/** An allowlist entry with its executor attached. */
export type ExecutableEntryDefinition = AllowlistEntryDefinition & {
  resource?: (params: never) => string;
};

/** The configuration key holding the owner list that owner.add / owner.remove change. */
export const OWNERS_CONFIG_KEY = "owners";

const ownersSchema = z.array(schemas.address);

function preflightFailed(message: string, details?: Record<string, unknown>, hint?: string): GbtError {
  return new GbtError("PREFLIGHT_FAILED", message, {
    ...(details ? { details } : {}),
    ...(hint ? { hint } : {}),
  });
}

function getPath(config: Record<string, unknown>, key: string): unknown {
  let current: unknown = config;
  for (const segment of key.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** A copy of `config` with `key` (dotted path) set to `value`, or removed when `value` is undefined. */
function withPath(config: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = key.split(".");
  if (head === undefined) return config;
  const copy = { ...config };
  if (rest.length === 0) {
    if (value === undefined) delete copy[head];
    else copy[head] = value;
    return copy;
  }
  const child = copy[head];
  const base =
    child !== null && typeof child === "object" && !Array.isArray(child)
      ? (child as Record<string, unknown>)
      : {};
  copy[head] = withPath(base, rest.join("."), value);
  return copy;
}

async function writeSetting(handlers: JobHandlers, key: string, value: unknown): Promise<void> {
  await handlers.writeConfig(withPath(await handlers.readConfig(), key, value));
}

async function readOwners(ctx: ExecutionContext): Promise<{ stored: unknown; owners: readonly Address[] }> {
  const stored = getPath(await ctx.handlers.readConfig(), OWNERS_CONFIG_KEY);
  if (stored === undefined) return { stored, owners: ctx.owners };
  const parsed = ownersSchema.safeParse(stored);
  if (!parsed.success) {
    throw preflightFailed(
      `The configuration's "${OWNERS_CONFIG_KEY}" is not a list of addresses.`,
      {},
      "Fix the node's configuration file, then send the job again.",
    );
  }
  return { stored, owners: parsed.data };
}

const statusRead: JobExecutor<Record<string, never>> = {
  resource: () => "status",
  execute: (_params, ctx) => ctx.handlers.status(),
};

const nodeDrain: JobExecutor<{ reason?: string | undefined }> = {
  resource: () => "node",
  async preflight(_params, ctx) {
    if (await ctx.handlers.isDraining()) {
      throw preflightFailed("The node is already drained.", {}, "Send node.resume to take requests again.");
    }
  },
  async execute(params, ctx) {
    await ctx.handlers.drain(params.reason);
    return { draining: true };
  },
  async verify(_params, ctx) {
    if (!(await ctx.handlers.isDraining()))
      throw new GbtError("INTERNAL", "The node still takes requests after drain.");
  },
  rollback: (_params, ctx) => ctx.handlers.resume(),
};

const nodeResume: JobExecutor<Record<string, never>> = {
  resource: () => "node",
  async preflight(_params, ctx) {
    if (!(await ctx.handlers.isDraining())) {
      throw preflightFailed("The node is not drained; it already takes requests.");
    }
  },
  async execute(_params, ctx) {
    await ctx.handlers.resume();
    return { draining: false };
  },
  async verify(_params, ctx) {
    if (await ctx.handlers.isDraining())
      throw new GbtError("INTERNAL", "The node is still drained after resume.");
  },
  rollback: (_params, ctx) => ctx.handlers.drain("rollback of node.resume"),
};

const configSet: JobExecutor<{ key: string; value: number | string }> = {
  // The whole document is rewritten, so every configuration change holds the same lock.
  resource: () => "config",
  async preflight(params, ctx) {
    ctx.memo.previous = getPath(await ctx.handlers.readConfig(), params.key);
  },
  async execute(params, ctx) {
    await writeSetting(ctx.handlers, params.key, params.value);
    return { key: params.key, previous: ctx.memo.previous ?? null, value: params.value };
  },
  async verify(params, ctx) {
    const actual = getPath(await ctx.handlers.readConfig(), params.key);
    if (actual !== params.value) {
      throw new GbtError("CONFLICT", `${params.key} reads ${JSON.stringify(actual)} after being set.`, {
        details: { key: params.key, expected: params.value, actual: actual ?? null },
        hint: "Check that nothing else rewrites the node's configuration.",
      });
    }
  },
  rollback: (params, ctx) => writeSetting(ctx.handlers, params.key, ctx.memo.previous),
};

function ownerChange(kind: "add" | "remove"): JobExecutor<{ address: Address }> {
  return {
    resource: () => "config",
    async preflight(params, ctx) {
      const { stored, owners } = await readOwners(ctx);
      const present = owners.some((owner) => isAddressEqual(owner, params.address));
      if (kind === "add" && present) throw preflightFailed(`${params.address} is already an owner.`);
      if (kind === "remove" && !present) throw preflightFailed(`${params.address} is not an owner.`);
      if (kind === "remove" && owners.length <= 1)
        throw preflightFailed("Refusing to remove the last owner.");
      ctx.memo.previous = stored;
      ctx.memo.owners = owners;
    },
    async execute(params, ctx) {
      const owners = ctx.memo.owners as readonly Address[];
      const next =
        kind === "add"
          ? [...owners, params.address]
          : owners.filter((owner) => !isAddressEqual(owner, params.address));
      await writeSetting(ctx.handlers, OWNERS_CONFIG_KEY, next);
      ctx.memo.next = next;
      return { owners: next };
    },
    async verify(params, ctx) {
      const { owners } = await readOwners(ctx);
      const present = owners.some((owner) => isAddressEqual(owner, params.address));
      if (present !== (kind === "add")) {
        throw new GbtError("CONFLICT", `The owner list does not reflect owner.${kind} of ${params.address}.`);
      }
    },
    rollback: (_params, ctx) => writeSetting(ctx.handlers, OWNERS_CONFIG_KEY, ctx.memo.previous),
  };
}

/** The handler a model or service job needs, or PREFLIGHT_FAILED when this node has none. */
function required<K extends keyof JobHandlers>(
  handlers: JobHandlers,
  name: K,
  jobType: string,
): NonNullable<JobHandlers[K]> {
  const handler = handlers[name];
  if (!handler)
    throw preflightFailed(`${jobType} is not supported on this node (no ${String(name)} handler).`);
  return (handler as (...args: never[]) => unknown).bind(handlers) as NonNullable<JobHandlers[K]>;
}

/**
 * model.pull: makes a model served and loaded. Rollback stops serving what this job added and
 * deletes a file it wrote; a model served before the job is left as it was.
 */
const modelPull: JobExecutor<{ model: string; as?: string; sha256?: string }> = {
  resource: () => "backend",
  async preflight(params, ctx) {
    const listModels = required(ctx.handlers, "listModels", "model.pull");
    required(ctx.handlers, "pullModel", "model.pull");
    const checked = await required(
      ctx.handlers,
      "checkPullSource",
      "model.pull",
    )(params.model, pullOptions(params));
    const id = (checked ? checked.id : undefined) ?? params.as ?? params.model;
    ctx.memo.id = id;
    ctx.memo.wasServed = (await listModels()).includes(id);
  },
  async execute(params, ctx) {
    const pulled = await required(
      ctx.handlers,
      "pullModel",
      "model.pull",
    )(params.model, {
      ...pullOptions(params),
      ...(ctx.progress ? { onProgress: ctx.progress } : {}),
    });
    const id = pulled.id ?? (ctx.memo.id as string | undefined) ?? params.model;
    ctx.memo.id = id;
    ctx.memo.createdFile = pulled.createdFile;
    return {
      model: id,
      ...(id !== params.model ? { source: params.model } : {}),
      createdFile: pulled.createdFile,
      alreadyServed: ctx.memo.wasServed === true,
    };
  },
  async verify(params, ctx) {
    const id = (ctx.memo.id as string | undefined) ?? params.model;
    const models = await required(ctx.handlers, "listModels", "model.pull")();
    if (!models.includes(id)) {
      throw new GbtError("CONFLICT", `Model ${id} is not served after model.pull.`, {
        details: { model: id, models },
      });
    }
  },
  async rollback(params, ctx) {
    if (ctx.memo.wasServed === true) return;
    const id = (ctx.memo.id as string | undefined) ?? params.model;
    await ctx.handlers.unloadModel?.(id);
    if (ctx.memo.createdFile === true) await ctx.handlers.deleteModelFile?.(id);
  },
};

/** model.pull's optional parameters for the handlers (absent ones left out). */
function pullOptions(params: { as?: string; sha256?: string }): PullJobOptions {
  return {
    ...(params.as !== undefined ? { as: params.as } : {}),
    ...(params.sha256 !== undefined ? { sha256: params.sha256 } : {}),
  };
}

/**
 * model.remove: stops serving a model, then deletes its file under the models dir. The delete comes
 * last, after the unload is confirmed, because it cannot be undone: rollback can serve the model
 * again only while its file exists.
 */
const modelRemove: JobExecutor<{ model: string }> = {
  resource: () => "backend",
  async preflight(params, ctx) {
    const models = await required(ctx.handlers, "listModels", "model.remove")();
    required(ctx.handlers, "unloadModel", "model.remove");
    required(ctx.handlers, "deleteModelFile", "model.remove");
    if (!models.includes(params.model)) {
      throw preflightFailed(`Model ${params.model} is not served on this node.`, { models });
    }
    if (models.length <= 1) {
      throw preflightFailed(
        `Refusing to remove ${params.model}, the only model this node serves.`,
        { models },
        "Pull another model first (model.pull).",
      );
    }
  },
  async execute(params, ctx) {
    await required(ctx.handlers, "unloadModel", "model.remove")(params.model);
    const models = await required(ctx.handlers, "listModels", "model.remove")();
    if (models.includes(params.model)) {
      throw new GbtError("CONFLICT", `Model ${params.model} is still served after unloading it.`);
    }
    const deleted = await required(ctx.handlers, "deleteModelFile", "model.remove")(params.model);
    ctx.memo.deleted = deleted;
    return { model: params.model, deletedFile: deleted };
  },
  async verify(params, ctx) {
    const models = await required(ctx.handlers, "listModels", "model.remove")();
    if (models.includes(params.model))
      throw new GbtError("CONFLICT", `Model ${params.model} is still served after model.remove.`);
  },
  async rollback(params, ctx) {
    if (ctx.memo.deleted === true) {
      throw new GbtError("CONFLICT", `Model ${params.model}'s file is deleted; it cannot be served again.`);
    }
    await ctx.handlers.pullModel?.(params.model);
  },
};

/**
 * service.restart: restarts the backend (its models unloaded and loaded again) or cycles the
 * server's intake; verify wants a healthy backend serving the same models as before. There is no
 * rollback: a restart has nothing to put back.
 */
const serviceRestart: JobExecutor<{ service: "backend" | "server" }> = {
  resource: () => "backend",
  async preflight(_params, ctx) {
    required(ctx.handlers, "restartService", "service.restart");
    required(ctx.handlers, "backendHealth", "service.restart");
    ctx.memo.models = await required(ctx.handlers, "listModels", "service.restart")();
  },
  async execute(params, ctx) {
    await required(ctx.handlers, "restartService", "service.restart")(params.service);
    return { service: params.service, models: ctx.memo.models };
  },
  async verify(params, ctx) {
    const health = await required(ctx.handlers, "backendHealth", "service.restart")();
    if (!health.ok) {
      throw new GbtError(
        "BACKEND_UNREACHABLE",
        `The backend is not healthy after restarting the ${params.service}.`,
        {
          details: { detail: health.detail ?? null },
        },
      );
    }
    const before = [...((ctx.memo.models as string[] | undefined) ?? [])].sort();
    const after = [...(await required(ctx.handlers, "listModels", "service.restart")())].sort();
    if (JSON.stringify(before) !== JSON.stringify(after)) {
      throw new GbtError("CONFLICT", `The node serves other models after restarting the ${params.service}.`, {
        details: { before, after },
      });
    }
  },
};

/**
 * model.switch: serves `model` (already on the node) instead of what it serves now, and makes it
 * the configured default so a restart keeps it. Its output states the anti-flapping cost: in a
 * pool the gateway sees the new model list at the next heartbeat and lowers this node's payout
 * multiplier (MODEL_SWITCH_PENALTY). Rollback serves the previous models again and restores the
 * config; model files are never deleted.
 */
const modelSwitch: JobExecutor<{ model: string }> = {
  resource: () => "backend",
  async preflight(params, ctx) {
    const served = await required(ctx.handlers, "listModels", "model.switch")();
    required(ctx.handlers, "pullModel", "model.switch");
    required(ctx.handlers, "unloadModel", "model.switch");
    const hasModel = required(ctx.handlers, "hasModel", "model.switch");
    if (served.length === 1 && served[0] === params.model) {
      throw preflightFailed(`This node already serves only ${params.model}; nothing to switch.`, {
        models: served,
      });
    }
    if (!served.includes(params.model) && !(await hasModel(params.model))) {
      throw preflightFailed(
        `Model ${params.model} is not on this node.`,
        { model: params.model, models: served },
        "Pull it first (model.pull), then switch to it.",
      );
    }
    await ctx.handlers.checkModelFits?.(params.model);
    ctx.memo.previous = served;
    const config = await ctx.handlers.readConfig();
    ctx.memo.config = config;
    ctx.memo.mode = getPath(config, "node.mode") ?? "local";
  },
  async execute(params, ctx) {
    const previous = ctx.memo.previous as string[];
    await required(ctx.handlers, "pullModel", "model.switch")(params.model);
    const unloaded: string[] = [];
    ctx.memo.unloaded = unloaded;
    for (const model of previous) {
      if (model === params.model) continue;
      await required(ctx.handlers, "unloadModel", "model.switch")(model);
      unloaded.push(model);
    }
    await ctx.handlers.writeConfig(
      withPath(ctx.memo.config as Record<string, unknown>, "backend.model", params.model),
    );
    ctx.memo.configWritten = true;
    const pooled = ctx.memo.mode !== "local";
    return {
      model: params.model,
      previous,
      unloaded,
      antiFlapping: {
        applies: pooled,
        ...modelSwitchCost(),
        note: pooled
          ? "The gateway sees the new model at the next heartbeat and pays this node at the lowered multiplier until it recovers."
          : "This node is in local mode: no pooled payouts, so the switch costs nothing; the penalty would apply once it joins a pool.",
      },
    };
  },
  async verify(params, ctx) {
    const models = await required(ctx.handlers, "listModels", "model.switch")();
    if (models.length !== 1 || models[0] !== params.model) {
      throw new GbtError(
        "CONFLICT",
        `The node serves ${models.join(", ") || "nothing"} after switching to ${params.model}.`,
        {
          details: { model: params.model, models },
        },
      );
    }
  },
  async rollback(params, ctx) {
    const previous = (ctx.memo.previous as string[] | undefined) ?? [];
    for (const model of (ctx.memo.unloaded as string[] | undefined) ?? []) {
      await ctx.handlers.pullModel?.(model);
    }
    if (!previous.includes(params.model)) await ctx.handlers.unloadModel?.(params.model);
    if (ctx.memo.configWritten === true)
      await ctx.handlers.writeConfig(ctx.memo.config as Record<string, unknown>);
  },
};

/**
 * benchmark.run: measures the node's backend the way `gbt node benchmark` does and stores the
 * signed record. It holds the backend lock, so no model job changes what is being measured; it
 * changes nothing else, so there is nothing to roll back (a failed run stores nothing).
 */
const benchmarkRun: JobExecutor<{
  mode?: "micro" | "serve" | undefined;
  genTokens?: number | undefined;
  promptTokens?: number | undefined;
}> = {
  resource: () => "backend",
  async preflight(_params, ctx) {
    required(ctx.handlers, "runBenchmark", "benchmark.run");
    const health = await required(ctx.handlers, "backendHealth", "benchmark.run")();
    if (!health.ok) {
      throw preflightFailed(`The backend is not healthy: ${health.detail ?? "no detail"}.`, {
        detail: health.detail ?? null,
      });
    }
  },
  async execute(params, ctx) {
    return required(
      ctx.handlers,
      "runBenchmark",
      "benchmark.run",
    )({
      mode: params.mode ?? "micro",
      ...(params.genTokens !== undefined ? { genTokens: params.genTokens } : {}),
      ...(params.promptTokens !== undefined ? { promptTokens: params.promptTokens } : {}),
    });
  },
};

/** logs.tail's default number of lines. */
export const DEFAULT_LOG_LINES = 50;

/** logs.tail: the last lines of the node's log, each redacted and clipped (redact-log-line.ts). */
const logsTail: JobExecutor<{ lines?: number | undefined }> = {
  resource: () => "logs",
  async preflight(_params, ctx) {
    required(ctx.handlers, "tailLogs", "logs.tail");
  },
  async execute(params, ctx) {
    const wanted = params.lines ?? DEFAULT_LOG_LINES;
    const raw = await required(ctx.handlers, "tailLogs", "logs.tail")(wanted);
    let redactions = 0;
    let truncated = 0;
    const lines = raw.slice(-wanted).map((line) => {
      const redacted = redactLogLine(line);
      redactions += redacted.redactions;
      if (redacted.truncated) truncated += 1;
      return redacted.text;
    });
    return { lines, count: lines.length, redactions, truncated };
  },
};

/** The executors of this node, by job type. */
export const jobExecutors: Record<string, JobExecutor<never>> = {
  "status.read": statusRead,
  "node.drain": nodeDrain,
  "node.resume": nodeResume,
  "config.set": configSet,
  "owner.add": ownerChange("add"),
  "owner.remove": ownerChange("remove"),
  "model.pull": modelPull,
  "model.remove": modelRemove,
  "service.restart": serviceRestart,
  "model.switch": modelSwitch,
  "benchmark.run": benchmarkRun,
  "logs.tail": logsTail,
};

/** The allowlist's job types with this node's executors attached where it has one. */
export function executableJobTypes(
  definitions: readonly AllowlistEntryDefinition[] = jobTypes,
  executors: Record<string, JobExecutor<never>> = jobExecutors,
): ExecutableEntryDefinition[] {
  return definitions.map((definition) => {
    const executor = executors[definition.type];
    return executor ? { ...definition, ...executor } : { ...definition };
  });
}

/** The allowlist registry with executors attached: what `createAgent` runs jobs from. */
export function createExecutableAllowlist(options: CreateAllowlistOptions = {}): AllowlistRegistry {
  return createAllowlist({ ...options, entries: executableJobTypes(options.entries) });
}
