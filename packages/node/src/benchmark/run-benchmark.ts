/**
 * `gbt node benchmark` as a service: config and node key → backend → the chosen mode (micro on
 * the backend itself, or a serve sweep through the node's OpenAI-compatible server or a given URL)
 * → the record (hardware, backend and version, model digest, parameters, results, verdicts) →
 * signed by the node key → stored in node.db.
 *
 * Every input is checked and the node key unlocked before anything is measured; a failure of any
 * kind, an abort (Ctrl-C) included, stores nothing. `--fail-under` does not throw here: the
 * result says whether the threshold passed, so the caller can print the stored record first and
 * then fail with {@link belowThresholdError}.
 */
import { randomUUID } from "node:crypto";
import { GbtError, isGbtError } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import pino from "pino";
import { buildBackend as defaultBuildBackend, defaultCapacity } from "../backend-factory.js";
import { createOpenAICompatibleBackend } from "../backends/openai-compatible.js";
import type { Backend, BackendHealth, ModelInfo } from "../backends/types.js";
import { type BackendConfig, type GpuChoice, type GpuLayers, loadConfig } from "../config.js";
import type { GpuStatus } from "../gpu/resolve-gpu.js";
import { type HardwareProfile, probeHardware } from "../hardware.js";
import { loadNodeAccount } from "../identity.js";
import { openNodeDatabase } from "../node-database.js";
import { startNodeServer } from "../server/node-server.js";
import {
  type BenchmarkGpu,
  type BenchmarkMode,
  type BenchmarkParameters,
  type BenchmarkRecordPayload,
  compareRecords,
  listBenchmarkRecords,
  type RecordComparison,
  type SignedBenchmarkRecord,
  signBenchmarkRecord,
  storeBenchmarkRecord,
  verifyBenchmarkRecord,
} from "./benchmark-record.js";
import { DEFAULT_SEED, type MicroResults, runMicroBenchmark } from "./micro.js";
import {
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MIN_GAIN_PCT,
  DEFAULT_TTFT_P99_TARGET_MS,
  FLOOR_TOK_PER_SEC,
  runServeSweep,
  type ServeResults,
} from "./serve-sweep.js";
import { benchmarkMetrics, statisticsDefinition, tokenEstimateDefinition } from "./stats.js";
import { chatCompletionsUrl } from "./stream-client.js";
import { calibrateSyntheticPrompt, syntheticMessages } from "./synthetic-prompt.js";

export const DEFAULT_PROMPT_TOKENS = 256;
export const DEFAULT_GEN_TOKENS = 128;
export const DEFAULT_REPETITIONS = 5;
export const DEFAULT_WARMUP = 1;
/** Below this many repetitions, sd and variation are reported but flagged. */
export const RECOMMENDED_REPETITIONS = 5;

export interface BenchmarkProgress {
  phase: "prepare" | "warmup" | "measure" | "store";
  /** Work done and planned in this phase (for a bar). */
  completed: number;
  total: number;
  label: string;
}

export interface RunNodeBenchmarkOptions {
  paths: GbtPaths;
  mode?: BenchmarkMode;
  /** Prompt size in tokens (default 256). */
  promptTokens?: number;
  /** Tokens generated per request (default 128). */
  genTokens?: number;
  /** Micro: measured repetitions (default 5) and warm-up runs (default 1). */
  repetitions?: number;
  warmup?: number;
  /** Serve: highest concurrency to try (default 32) and the TTFT p99 target that stops the sweep. */
  maxConcurrency?: number;
  ttftP99TargetMs?: number;
  minGainPct?: number;
  minRequestsPerLevel?: number;
  roundsPerLevel?: number;
  /** Serve: benchmark this OpenAI-compatible server instead of starting the node's own. */
  url?: string;
  apiKey?: string;
  /** Threshold on the headline decode rate (tok/s); the result says whether it passed. */
  failUnder?: number;
  /** Model: a GGUF path or id (embedded), an Ollama tag or a server model id; default the configured one. */
  model?: string;
  threads?: number;
  /** Embedded: GPU choice and layers offloaded, over the config's. */
  gpu?: GpuChoice;
  gpuLayers?: GpuLayers;
  /** Warnings a user should see (a model only partly offloaded). */
  onWarning?: (message: string) => void;
  /** Unlocks an encrypted node key. */
  passphrase?: string;
  /** Compare with the previous record of the same mode. */
  compare?: boolean;
  onProgress?: (progress: BenchmarkProgress) => void;
  signal?: AbortSignal;
  now?: () => number;
  /** Injected for tests: builds the backend from the config. */
  buildBackend?: typeof defaultBuildBackend;
  /** Injected for tests: the hardware snapshot. */
  probeHardware?: () => Promise<HardwareProfile>;
}

export interface NodeBenchmarkResult {
  /** The signed record, as stored. */
  signed: SignedBenchmarkRecord;
  /** The previous record of the same mode, when `compare` was asked and one exists. */
  previous: SignedBenchmarkRecord | null;
  comparison: RecordComparison | null;
  /** True when `failUnder` was given and the headline decode rate is below it. */
  belowThreshold: boolean;
}

function interrupted(): GbtError {
  return new GbtError("INTERRUPTED", "The benchmark was interrupted; nothing was stored.");
}

function requireInteger(value: number | undefined, name: string, flag: string, min: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min) {
    throw new GbtError("INVALID_INPUT", `${name} must be an integer of at least ${min}, got ${value}.`, {
      details: { [flag]: value },
      hint: `Use ${flag} ${min} or more.`,
    });
  }
}

function validate(options: RunNodeBenchmarkOptions): void {
  requireInteger(options.promptTokens, "The prompt size", "--prompt-tokens", 1);
  requireInteger(options.genTokens, "The generated tokens", "--gen-tokens", 2);
  requireInteger(options.repetitions, "The repetitions", "--repetitions", 1);
  requireInteger(options.warmup, "The warm-up runs", "--warmup", 0);
  requireInteger(options.maxConcurrency, "The maximum concurrency", "--max-concurrency", 1);
  requireInteger(options.threads, "The thread count", "--threads", 1);
  for (const [value, flag] of [
    [options.failUnder, "--fail-under"],
    [options.ttftP99TargetMs, "--ttft-p99-target-ms"],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new GbtError("INVALID_INPUT", `${flag} must be a non-negative number, got ${value}.`);
    }
  }
  if (options.url !== undefined && (options.mode ?? "micro") !== "serve") {
    throw new GbtError("USAGE", "A server URL can only be benchmarked in serve mode.", {
      hint: "Add --mode serve, or drop --url to benchmark this node's backend.",
    });
  }
}

function unhealthy(backend: Backend, health: BackendHealth): GbtError {
  return new GbtError(
    "BACKEND_UNREACHABLE",
    `The ${backend.kind} backend at ${backend.location} is not reachable or not healthy: ${health.detail ?? "no answer"}.`,
    {
      details: { backend: backend.kind, location: backend.location },
      hint:
        backend.kind === "ollama"
          ? "Start Ollama (`ollama serve`) or choose another backend with `gbt setup --backend`."
          : "Start the backend server, or choose another with `gbt setup --backend`.",
    },
  );
}

function pickModel(models: ModelInfo[], wanted: string | undefined, backend: Backend): ModelInfo {
  const model = wanted === undefined ? models[0] : models.find((m) => m.id === wanted);
  if (!model) {
    const known = models.map((m) => m.id);
    throw new GbtError(
      "MODEL_NOT_FOUND",
      wanted === undefined
        ? `The ${backend.kind} backend at ${backend.location} serves no model.`
        : `The ${backend.kind} backend at ${backend.location} has no model '${wanted}'.`,
      {
        details: { model: wanted ?? null, available: known },
        hint:
          known.length > 0 ? `Use --model with one of: ${known.join(", ")}.` : "Pull or add a model first.",
      },
    );
  }
  return model;
}

/** Runs the benchmark, signs and stores its record. Nothing is stored when it throws. */
export async function runNodeBenchmark(options: RunNodeBenchmarkOptions): Promise<NodeBenchmarkResult> {
  validate(options);
  const { paths, signal } = options;
  const mode: BenchmarkMode = options.mode ?? "micro";
  const now = options.now ?? Date.now;
  const promptTokens = options.promptTokens ?? DEFAULT_PROMPT_TOKENS;
  const genTokens = options.genTokens ?? DEFAULT_GEN_TOKENS;
  const repetitions = options.repetitions ?? DEFAULT_REPETITIONS;
  const warmup = options.warmup ?? DEFAULT_WARMUP;
  const maxConcurrency = options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
  const ttftP99TargetMs = options.ttftP99TargetMs ?? DEFAULT_TTFT_P99_TARGET_MS;
  const minGainPct = options.minGainPct ?? DEFAULT_MIN_GAIN_PCT;
  const progress = (update: BenchmarkProgress) => options.onProgress?.(update);
  const prepare = (completed: number, label: string) =>
    progress({ phase: "prepare", completed, total: 5, label });

  const config = await loadConfig(paths.configFile);
  const account = await loadNodeAccount(paths.nodeKeystore, options.passphrase);
  if (account.address.toLowerCase() !== config.node.address.toLowerCase()) {
    throw new GbtError(
      "CONFIG_INVALID",
      `The config names node ${config.node.address}, but the keystore holds ${account.address}.`,
      { hint: "Run `gbt setup` again so that the config and the key agree." },
    );
  }
  if (signal?.aborted) throw interrupted();

  const backendConfig: BackendConfig = {
    ...config.backend,
    ...(options.model !== undefined ? { model: options.model } : {}),
  };
  const capacity = backendConfig.capacity ?? defaultCapacity(backendConfig.kind);
  prepare(0, "starting the backend");
  let backend: Backend;
  let defaultModel: string | undefined;
  let gpu: GpuStatus | undefined;
  if (options.url !== undefined) {
    backend = createOpenAICompatibleBackend({
      baseURL: chatCompletionsUrl(options.url).replace(/\/chat\/completions$/, ""),
    });
    defaultModel = options.model;
  } else {
    const built = await (options.buildBackend ?? defaultBuildBackend)(backendConfig, paths, {
      capacity,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.gpu !== undefined ? { gpu: options.gpu } : {}),
      ...(options.gpuLayers !== undefined ? { gpuLayers: options.gpuLayers } : {}),
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
    backend = built.backend;
    gpu = built.gpu;
    defaultModel =
      backend.kind === "embedded"
        ? (built.defaultModel ?? options.model)
        : (options.model ?? built.defaultModel);
  }

  try {
    prepare(1, "checking the backend");
    const health = await backend.health(signal);
    if (signal?.aborted) throw interrupted();
    if (!health.ok) throw unhealthy(backend, health);
    const model = pickModel(await backend.listModels(signal), defaultModel, backend);
    const contextLength = model.contextLength ?? null;
    if (contextLength !== null && promptTokens + genTokens > contextLength) {
      throw new GbtError(
        "CONTEXT_LENGTH_EXCEEDED",
        `A prompt of ${promptTokens} tokens plus ${genTokens} generated needs ${promptTokens + genTokens} tokens; model '${model.id}' has a context of ${contextLength}.`,
        {
          details: { promptTokens, genTokens, contextLength, model: model.id },
          hint: `Lower --prompt-tokens / --gen-tokens to fit ${contextLength} tokens together.`,
        },
      );
    }

    prepare(2, `loading ${model.id}`);
    if (backend.loadModel) await backend.loadModel(model.id);
    if (signal?.aborted) throw interrupted();
    const count = backend.countPromptTokens?.bind(backend);
    const prompt = await calibrateSyntheticPrompt(
      promptTokens,
      count ? (messages) => count({ model: model.id, messages }) : undefined,
    );
    const messages = (index: number) => syntheticMessages(prompt.words, index);

    prepare(3, "probing the hardware");
    const hardware = await (options.probeHardware ?? (() => probeHardware({ dataDir: paths.dataDir })))();
    if (signal?.aborted) throw interrupted();
    prepare(5, "ready");

    let results: MicroResults | ServeResults;
    if (mode === "micro") {
      results = await runMicroBenchmark(backend, {
        model: model.id,
        messages,
        genTokens,
        repetitions,
        warmup,
        seed: DEFAULT_SEED,
        ...(signal ? { signal } : {}),
        onRun: (run) =>
          progress({
            phase: run.phase,
            completed: run.completed,
            total: run.total,
            label:
              run.phase === "warmup"
                ? `warm-up ${run.completed}/${warmup}`
                : `repetition ${run.completed - warmup}/${repetitions}`,
          }),
      });
    } else {
      const ownServer =
        options.url === undefined
          ? await startNodeServer({
              backend,
              capacity,
              logger: pino({ level: "silent" }),
              host: "127.0.0.1",
              port: 0,
            })
          : undefined;
      try {
        results = await runServeSweep({
          url: ownServer?.url ?? (options.url as string),
          ...(options.apiKey ? { apiKey: options.apiKey } : {}),
          model: model.id,
          messages,
          genTokens,
          maxConcurrency,
          ...(ownServer ? { capacity } : {}),
          ttftP99TargetMs,
          minGainPct,
          floorTokPerSec: FLOOR_TOK_PER_SEC,
          ...(options.minRequestsPerLevel !== undefined
            ? { minRequestsPerLevel: options.minRequestsPerLevel }
            : {}),
          ...(options.roundsPerLevel !== undefined ? { roundsPerLevel: options.roundsPerLevel } : {}),
          seed: DEFAULT_SEED,
          ...(signal ? { signal } : {}),
          onRequest: (p) =>
            progress({
              phase: "measure",
              completed: p.completed,
              total: p.total,
              label: `concurrency ${p.concurrency} (level ${p.level}/${p.levels}): ${p.completed}/${p.total} requests`,
            }),
        });
        if (ownServer) (results as ServeResults).endpoint = "node server (in process)";
      } finally {
        await ownServer?.close(1_000);
      }
    }
    if (signal?.aborted) throw interrupted();

    progress({ phase: "store", completed: 0, total: 1, label: "signing and storing the record" });
    const headline = results.decodeTokPerSec;
    const eligible =
      results.mode === "serve" ? results.eligibleCapacity : headline >= FLOOR_TOK_PER_SEC ? 1 : 0;
    const parameters: BenchmarkParameters = {
      promptTokens,
      promptTokensMeasured: prompt.promptTokens,
      promptCalibration: prompt.calibration,
      genTokens,
      temperature: 0,
      seed: DEFAULT_SEED,
      repetitions: mode === "micro" ? repetitions : null,
      warmup: mode === "micro" ? warmup : null,
      maxConcurrency: mode === "serve" ? maxConcurrency : null,
      capacity: mode === "serve" && options.url === undefined ? capacity : null,
      ttftP99TargetMs: mode === "serve" ? ttftP99TargetMs : null,
      minGainPct: mode === "serve" ? minGainPct : null,
      threads: options.threads ?? backendConfig.threads ?? null,
    };
    const createdMs = now();
    const record: BenchmarkRecordPayload = {
      schemaVersion: 1,
      recordId: randomUUID(),
      node: account.address,
      createdAt: new Date(createdMs).toISOString(),
      mode,
      hardware,
      backend: {
        kind: backend.kind,
        version: health.version ?? null,
        location: backend.location,
        detail: health.detail ?? null,
      },
      model: {
        id: model.id,
        digest: model.digest ?? null,
        sizeBytes: model.sizeBytes ?? null,
        contextLength,
      },
      parameters,
      ...(gpu ? { gpu: await benchmarkGpu(gpu, backend, model.id) } : {}),
      results,
      verdicts: {
        floorTokPerSec: FLOOR_TOK_PER_SEC,
        decodeTokPerSec: headline,
        meetsFloor: eligible >= 1,
        eligibleCapacity: eligible,
        failUnder:
          options.failUnder === undefined
            ? null
            : { thresholdTokPerSec: options.failUnder, passed: headline >= options.failUnder },
      },
      tokenCounts: {
        source: results.tokenCounts,
        definition:
          results.tokenCounts === "usage"
            ? "the backend's own usage (prompt and completion tokens it counted)"
            : tokenEstimateDefinition,
      },
      metrics: benchmarkMetrics,
      statistics: statisticsDefinition,
      harness: {
        name: "gbt",
        runtime: `node ${process.version}`,
        platform: `${process.platform}-${process.arch}`,
      },
      warnings: recordWarnings(results, {
        repetitions,
        genTokens,
        mode,
        calibration: prompt.calibration,
        digest: model.digest,
      }),
    };
    const issuedAt = Math.floor(createdMs / 1000);
    const signed = await signBenchmarkRecord(account, record, { chainId: config.node.chainId, issuedAt });
    // The stored record must be one a verifier accepts: prove it before storing.
    await verifyBenchmarkRecord(JSON.parse(JSON.stringify(signed)), {
      chainId: config.node.chainId,
      allowedSigners: [account.address],
      now: () => createdMs,
    });
    if (signal?.aborted) throw interrupted();

    const db = openNodeDatabase(paths.nodeDatabase);
    try {
      const previous = options.compare ? (listBenchmarkRecords(db, { mode, limit: 1 })[0] ?? null) : null;
      storeBenchmarkRecord(db, signed);
      progress({ phase: "store", completed: 1, total: 1, label: "stored" });
      return {
        signed,
        previous,
        comparison: previous ? compareRecords(previous.payload, record) : null,
        belowThreshold: options.failUnder !== undefined && headline < options.failUnder,
      };
    } finally {
      db.close();
    }
  } catch (error) {
    if (signal?.aborted && !isGbtError(error, "INTERRUPTED")) throw interrupted();
    throw error;
  } finally {
    await backend.close().catch(() => undefined);
  }
}

function recordWarnings(
  results: MicroResults | ServeResults,
  context: {
    repetitions: number;
    genTokens: number;
    mode: BenchmarkMode;
    calibration: "backend" | "estimate";
    digest: string | undefined;
  },
): string[] {
  const warnings: string[] = [];
  if (context.mode === "micro" && context.repetitions < RECOMMENDED_REPETITIONS) {
    warnings.push(
      `only ${context.repetitions} repetition(s): sd and variation need at least ${RECOMMENDED_REPETITIONS} to mean much`,
    );
  }
  if (results.tokenCounts === "estimate")
    warnings.push(`token counts are estimates: ${tokenEstimateDefinition}`);
  if (context.calibration === "estimate") {
    warnings.push(
      "the prompt size was estimated (characters / 4): the backend cannot count tokens before a request",
    );
  }
  if (context.digest === undefined) warnings.push("the backend reported no model digest");
  if (results.crossCheck.source === null) {
    warnings.push("the backend reported no timings of its own: the clock cross-check is unavailable");
  }
  if (results.mode === "micro") {
    const short = results.repetitions.filter((r) => r.completionTokens < context.genTokens).length;
    if (short > 0) {
      warnings.push(
        `${short} of ${results.repetitions.length} run(s) ended before ${context.genTokens} tokens`,
      );
    }
  }
  return warnings;
}

/** The error `--fail-under` exits with (exit code 10), once the record is stored and printed. */
export function belowThresholdError(result: NodeBenchmarkResult): GbtError {
  const verdicts = result.signed.payload.verdicts;
  const threshold = verdicts.failUnder?.thresholdTokPerSec ?? 0;
  return new GbtError(
    "BELOW_THRESHOLD",
    `Decode rate ${verdicts.decodeTokPerSec.toFixed(1)} tok/s is below --fail-under ${threshold} tok/s (record ${result.signed.payload.recordId} was stored).`,
    {
      details: {
        decodeTokPerSec: verdicts.decodeTokPerSec,
        threshold,
        recordId: result.signed.payload.recordId,
      },
    },
  );
}

/** Stored records of this node, newest first (`gbt node benchmark history`). */
export async function benchmarkHistory(options: {
  paths: GbtPaths;
  limit?: number;
  mode?: BenchmarkMode;
}): Promise<SignedBenchmarkRecord[]> {
  requireInteger(options.limit, "The limit", "--limit", 1);
  await loadConfig(options.paths.configFile);
  const db = openNodeDatabase(options.paths.nodeDatabase);
  try {
    return listBenchmarkRecords(db, {
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.mode ? { mode: options.mode } : {}),
    });
  } finally {
    db.close();
  }
}

/** The GPU facts of the record, with the offload the loaded model actually got. */
async function benchmarkGpu(gpu: GpuStatus, backend: Backend, modelId: string): Promise<BenchmarkGpu> {
  const details = (await backend.listModels().catch(() => [])).find((m) => m.id === modelId)?.details;
  const layers = (key: string) => (typeof details?.[key] === "number" ? (details[key] as number) : null);
  return {
    backend: gpu.backend,
    devices: gpu.devices,
    vramTotalMB: gpu.vramTotalMB,
    driver: gpu.driver,
    gpuLayers: layers("gpuLayers"),
    totalLayers: layers("totalLayers"),
    summary: gpu.summary,
  };
}
