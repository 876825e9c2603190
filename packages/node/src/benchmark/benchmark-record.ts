/**
 * The benchmark record: what was measured (hardware, backend and version, model digest,
 * parameters, results, verdicts, and the definitions of every metric), signed by the node key as
 * a protocol `BenchmarkRecord` whose payload is this whole record, bound by `resultsHash`. The
 * signed message repeats the numbers the network routes on (decode rate, eligible capacity) so a
 * verifier can read them without trusting the payload's shape; {@link verifyBenchmarkRecord}
 * checks that both agree. Records live in the node's SQLite database, newest first.
 */
import {
  GbtError,
  type SignedObject,
  schemas,
  signObject,
  type VerifyObjectOptions,
  verifyObject,
} from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import type { BackendKind } from "../backends/types.js";
import type { HardwareProfile } from "../hardware.js";
import type { NodeDatabase } from "../node-database.js";
import type { MicroResults } from "./micro.js";
import type { ServeResults } from "./serve-sweep.js";
import { diffPct, type MetricDefinition, round, type TokenCountSource } from "./stats.js";

/** Signed records stay valid for 30 days: hardware, drivers and models change. */
export const BENCHMARK_RECORD_TTL_SECONDS = 30 * 24 * 60 * 60;

export type BenchmarkMode = "micro" | "serve";

export interface BenchmarkParameters {
  /** Prompt size asked for (tokens). */
  promptTokens: number;
  /** Prompt size the backend counted for the synthetic prompt. */
  promptTokensMeasured: number;
  /** "backend": counted by the backend's tokenizer and template; "estimate": characters / 4. */
  promptCalibration: "backend" | "estimate";
  /** Tokens generated per request (max_tokens). */
  genTokens: number;
  temperature: 0;
  seed: number;
  /** Micro: measured repetitions and unmeasured warm-up runs. */
  repetitions: number | null;
  warmup: number | null;
  /** Serve: sweep limits and stop rules. */
  maxConcurrency: number | null;
  capacity: number | null;
  ttftP99TargetMs: number | null;
  minGainPct: number | null;
  threads: number | null;
}

export interface BenchmarkVerdicts {
  /** The network's per-stream floor, tok/s. */
  floorTokPerSec: number;
  /** The headline decode rate: micro: mean over repetitions; serve: mean per stream at concurrency 1. */
  decodeTokPerSec: number;
  meetsFloor: boolean;
  /** Highest concurrency at which every stream stays above the floor (micro measures one stream: 0 or 1). */
  eligibleCapacity: number;
  /** `--fail-under`: the threshold on the headline decode rate and whether it passed. */
  failUnder: { thresholdTokPerSec: number; passed: boolean } | null;
}

/** The GPU and offload a benchmark run actually used. */
export interface BenchmarkGpu {
  backend: "cuda" | "vulkan" | "metal" | "cpu";
  /** Device names as llama.cpp reports them (e.g. "NVIDIA H200"). */
  devices: string[];
  vramTotalMB: number | null;
  driver: string | null;
  /** Layers on the GPU / layers of the model, as loaded (null when the backend did not say). */
  gpuLayers: number | null;
  totalLayers: number | null;
  /** The resolver's sentence: which GPU, or why the CPU. */
  summary: string;
}

/** The whole record: the payload of the signed BenchmarkRecord. */
export interface BenchmarkRecordPayload {
  schemaVersion: 1;
  recordId: string;
  node: Address;
  /** ISO time the record was made. */
  createdAt: string;
  mode: BenchmarkMode;
  hardware: HardwareProfile;
  backend: {
    kind: BackendKind;
    version: string | null;
    location: string;
    detail: string | null;
  };
  model: {
    id: string;
    /** sha256 of the GGUF (`sha256:…`) or the backend's own digest (Ollama); null when it reports none. */
    digest: string | null;
    sizeBytes: number | null;
    contextLength: number | null;
  };
  parameters: BenchmarkParameters;
  /**
   * Embedded backend: the accelerator the run used (absent on other backends and in records made
   * before gbt knew GPUs). `backend` "cpu" with `reason` when it ran on the CPU.
   */
  gpu?: BenchmarkGpu;
  results: MicroResults | ServeResults;
  verdicts: BenchmarkVerdicts;
  tokenCounts: { source: TokenCountSource; definition: string };
  /** Definitions of every metric and statistic, so the record explains itself. */
  metrics: readonly MetricDefinition[];
  statistics: string;
  /** The measuring program. */
  harness: { name: "gbt"; runtime: string; platform: string };
  warnings: string[];
}

export type SignedBenchmarkRecord = SignedObject<"BenchmarkRecord"> & { payload: BenchmarkRecordPayload };

/** The digest the signed message carries: the model's digest, or "unknown" when the backend has none. */
export function messageModelDigest(record: BenchmarkRecordPayload): string {
  const digest = record.model.digest;
  return digest !== null && digest.length <= 160 && !schemas.hasControlCharacters(digest)
    ? digest
    : "unknown";
}

/** Signs `record` with the node key as a protocol BenchmarkRecord (chainId from the node's config). */
export async function signBenchmarkRecord(
  account: LocalAccount,
  record: BenchmarkRecordPayload,
  options: { chainId: number; issuedAt: number },
): Promise<SignedBenchmarkRecord> {
  const signed = await signObject(account, {
    kind: "BenchmarkRecord",
    chainId: options.chainId,
    message: {
      recordId: record.recordId,
      node: record.node,
      backend: record.backend.kind,
      modelDigest: messageModelDigest(record),
      decodeTokPerSecMilli: Math.max(0, Math.round(record.verdicts.decodeTokPerSec * 1000)),
      eligibleCapacity: record.verdicts.eligibleCapacity,
      issuedAt: options.issuedAt,
      expiresAt: options.issuedAt + BENCHMARK_RECORD_TTL_SECONDS,
    },
    payload: record,
  });
  return signed as SignedBenchmarkRecord;
}

/**
 * Verifies a signed benchmark record (signature, domain, chain, expiry, payload hash) and that the
 * signed message agrees with its payload. Throws the protocol's GbtError naming the failed check.
 */
export async function verifyBenchmarkRecord(
  value: unknown,
  options: Omit<VerifyObjectOptions<"BenchmarkRecord">, "kind">,
): Promise<SignedBenchmarkRecord> {
  const signed = (await verifyObject(value, {
    ...options,
    kind: "BenchmarkRecord",
  })) as SignedBenchmarkRecord;
  const record = signed.payload;
  const message = signed.message;
  const mismatch = (field: string) =>
    new GbtError(
      "INVALID_OBJECT",
      `The BenchmarkRecord's ${field} differs between its message and its payload.`,
      {
        details: { field },
      },
    );
  if (typeof record !== "object" || record === null) throw mismatch("payload");
  if (record.recordId !== message.recordId) throw mismatch("recordId");
  if (record.node?.toLowerCase() !== message.node.toLowerCase()) throw mismatch("node");
  if (record.backend?.kind !== message.backend) throw mismatch("backend");
  if (messageModelDigest(record) !== message.modelDigest) throw mismatch("modelDigest");
  if (Math.round((record.verdicts?.decodeTokPerSec ?? Number.NaN) * 1000) !== message.decodeTokPerSecMilli) {
    throw mismatch("decodeTokPerSecMilli");
  }
  if (record.verdicts?.eligibleCapacity !== message.eligibleCapacity) throw mismatch("eligibleCapacity");
  return signed;
}

/** Stores a signed record (one row; the signed JSON as it was signed). */
export function storeBenchmarkRecord(db: NodeDatabase, signed: SignedBenchmarkRecord): void {
  const record = signed.payload;
  db.prepare(
    `INSERT INTO benchmark_records
       (id, issued_at, mode, backend, model_id, model_digest, decode_tok_per_sec, eligible_capacity, signed_json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    record.recordId,
    signed.message.issuedAt,
    record.mode,
    record.backend.kind,
    record.model.id,
    signed.message.modelDigest,
    record.verdicts.decodeTokPerSec,
    record.verdicts.eligibleCapacity,
    JSON.stringify(signed),
  );
}

export interface ListBenchmarkRecordsOptions {
  /** At most this many, newest first (default: all). */
  limit?: number;
  mode?: BenchmarkMode;
}

/** Stored records, newest first. */
export function listBenchmarkRecords(
  db: NodeDatabase,
  options: ListBenchmarkRecordsOptions = {},
): SignedBenchmarkRecord[] {
  const where = options.mode ? "WHERE mode = ?" : "";
  const limit = options.limit !== undefined ? "LIMIT ?" : "";
  const parameters: Array<string | number> = [];
  if (options.mode) parameters.push(options.mode);
  if (options.limit !== undefined) parameters.push(Math.max(0, Math.floor(options.limit)));
  const rows = db
    .prepare(
      `SELECT signed_json FROM benchmark_records ${where} ORDER BY issued_at DESC, rowid DESC ${limit}`,
    )
    .all(...parameters) as Array<{ signed_json: string }>;
  return rows.map((row) => JSON.parse(row.signed_json) as SignedBenchmarkRecord);
}

/** The numbers a comparison and a history line show for one record; null where a mode has none. */
export function headlineMetrics(record: BenchmarkRecordPayload): Record<HeadlineName, number | null> {
  const results = record.results;
  if (results.mode === "micro") {
    return {
      decodeTokPerSec: record.verdicts.decodeTokPerSec,
      prefillTokPerSec: results.summary.prefillTokPerSec.mean,
      ttftMs: results.summary.ttftMs.mean,
      tpotMs: results.summary.tpotMs.mean,
      e2eMs: results.summary.e2eMs.mean,
      systemTokPerSec: null,
      eligibleCapacity: record.verdicts.eligibleCapacity,
    };
  }
  const first = results.levels[0];
  return {
    decodeTokPerSec: record.verdicts.decodeTokPerSec,
    prefillTokPerSec: first?.prefillTokPerSec.mean ?? null,
    ttftMs: first?.ttftMs.mean ?? null,
    tpotMs: first?.tpotMs.mean ?? null,
    e2eMs: first?.e2eMs.mean ?? null,
    systemTokPerSec: results.levels.reduce<number | null>(
      (best, level) => (best === null || level.systemTokPerSec > best ? level.systemTokPerSec : best),
      null,
    ),
    eligibleCapacity: record.verdicts.eligibleCapacity,
  };
}

export type HeadlineName =
  | "decodeTokPerSec"
  | "prefillTokPerSec"
  | "ttftMs"
  | "tpotMs"
  | "e2eMs"
  | "systemTokPerSec"
  | "eligibleCapacity";

const headlineRows: ReadonlyArray<{
  name: HeadlineName;
  label: string;
  unit: string;
  better: "higher" | "lower";
}> = [
  { name: "decodeTokPerSec", label: "decode", unit: "tok/s", better: "higher" },
  { name: "prefillTokPerSec", label: "prefill", unit: "tok/s", better: "higher" },
  { name: "ttftMs", label: "TTFT mean", unit: "ms", better: "lower" },
  { name: "tpotMs", label: "TPOT mean", unit: "ms", better: "lower" },
  { name: "e2eMs", label: "e2e mean", unit: "ms", better: "lower" },
  { name: "systemTokPerSec", label: "system (best level)", unit: "tok/s", better: "higher" },
  { name: "eligibleCapacity", label: "eligible capacity", unit: "streams", better: "higher" },
];

export interface RecordComparison {
  previousId: string;
  currentId: string;
  previousCreatedAt: string;
  rows: Array<{
    name: HeadlineName;
    label: string;
    unit: string;
    better: "higher" | "lower";
    previous: number | null;
    current: number | null;
    delta: number | null;
    deltaPct: number | null;
  }>;
  /** What differs between the two runs besides the results (model, backend, parameters, hardware). */
  notes: string[];
}

/** Deltas of the headline metrics from `previous` to `current`, and what else changed between them. */
export function compareRecords(
  previous: BenchmarkRecordPayload,
  current: BenchmarkRecordPayload,
): RecordComparison {
  const before = headlineMetrics(previous);
  const after = headlineMetrics(current);
  const notes: string[] = [];
  if (previous.mode !== current.mode) notes.push(`mode changed: ${previous.mode} → ${current.mode}`);
  if (previous.model.digest !== current.model.digest || previous.model.id !== current.model.id) {
    notes.push(`model changed: ${previous.model.id} → ${current.model.id}`);
  }
  if (
    previous.backend.kind !== current.backend.kind ||
    previous.backend.version !== current.backend.version
  ) {
    notes.push(
      `backend changed: ${previous.backend.kind} ${previous.backend.version ?? "?"} → ${current.backend.kind} ${current.backend.version ?? "?"}`,
    );
  }
  const changedParameters = (Object.keys(current.parameters) as Array<keyof BenchmarkParameters>).filter(
    (key) => previous.parameters[key] !== current.parameters[key],
  );
  if (changedParameters.length > 0) notes.push(`parameters changed: ${changedParameters.join(", ")}`);
  const hardwareKey = (record: BenchmarkRecordPayload) =>
    JSON.stringify([record.hardware.cpu?.brand, record.hardware.gpus?.map((gpu) => gpu.model)]);
  if (hardwareKey(previous) !== hardwareKey(current)) notes.push("hardware changed");
  return {
    previousId: previous.recordId,
    currentId: current.recordId,
    previousCreatedAt: previous.createdAt,
    rows: headlineRows.map((row) => {
      const p = before[row.name];
      const c = after[row.name];
      return {
        ...row,
        previous: p,
        current: c,
        delta: p !== null && c !== null ? round(c - p) : null,
        deltaPct: round(diffPct(c, p), 2),
      };
    }),
    notes,
  };
}
