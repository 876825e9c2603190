import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GbtError, hashPayload, isGbtError, verifyObject } from "@gbt/protocol";
import { type GbtPaths, resolvePaths } from "@gbt/store";
import { describe, expect, it } from "vitest";
import type { Backend } from "../backends/types.js";
import type { HardwareProfile } from "../hardware.js";
import { openNodeDatabase } from "../node-database.js";
import { setupNode } from "../setup.js";
import { createScriptedBackend, type ScriptedBackendOptions } from "../testing/scripted-backend.js";
import {
  BENCHMARK_RECORD_TTL_SECONDS,
  listBenchmarkRecords,
  type SignedBenchmarkRecord,
  verifyBenchmarkRecord,
} from "./benchmark-record.js";
import {
  type BenchmarkProgress,
  belowThresholdError,
  benchmarkHistory,
  type RunNodeBenchmarkOptions,
  runNodeBenchmark,
} from "./run-benchmark.js";

const CHAIN_ID = 31337;
const DIGEST = `sha256:${"ab".repeat(32)}`;
const hardware: HardwareProfile = {
  gpus: [],
  cpu: { brand: "Test CPU", physicalCores: 2, logicalCores: 2, flags: null },
  memory: { totalMB: 1024, availableMB: 512 },
  disk: null,
  os: null,
  warnings: [],
};

async function freshNode(): Promise<GbtPaths> {
  const paths = resolvePaths({ GBT_HOME: await mkdtemp(join(tmpdir(), "gbt-bench-")) });
  await setupNode({ paths, probeHardware: async () => hardware, detectBackends: async () => [] });
  return paths;
}

function scripted(options: ScriptedBackendOptions = {}, contextLength = 4096) {
  const backend = createScriptedBackend(options);
  let closed = 0;
  const withDigest: Backend = {
    ...backend,
    listModels: async () => [{ id: "scripted", digest: DIGEST, sizeBytes: 1234, contextLength }],
    close: async () => {
      closed++;
    },
  };
  return { backend: withDigest, scripted: backend, closed: () => closed };
}

function run(paths: GbtPaths, backend: Backend, extra: Partial<RunNodeBenchmarkOptions> = {}) {
  return runNodeBenchmark({
    paths,
    genTokens: 11,
    promptTokens: 64,
    repetitions: 5,
    warmup: 1,
    buildBackend: async () => ({ backend, defaultModel: "scripted" }),
    probeHardware: async () => hardware,
    ...extra,
  });
}

function stored(paths: GbtPaths): SignedBenchmarkRecord[] {
  const db = openNodeDatabase(paths.nodeDatabase);
  try {
    return listBenchmarkRecords(db);
  } finally {
    db.close();
  }
}

describe("runNodeBenchmark (micro) on a scripted backend", () => {
  it("signs and stores a record that @gbt/protocol verifies, with exactly known timings", async () => {
    const paths = await freshNode();
    const { backend, scripted: inner, closed } = scripted({ prefillMs: 30, tokenMs: 10 });
    const phases: BenchmarkProgress["phase"][] = [];
    const { signed, belowThreshold, comparison } = await run(paths, backend, {
      onProgress: (p) => phases.push(p.phase),
    });
    expect(belowThreshold).toBe(false);
    expect(comparison).toBeNull();
    expect(closed()).toBe(1);
    expect(new Set(phases)).toEqual(new Set(["prepare", "warmup", "measure", "store"]));

    const [row] = stored(paths);
    expect(row).toEqual(JSON.parse(JSON.stringify(signed)));
    const config = JSON.parse(await readFile(paths.configFile, "utf8")) as { node: { address: string } };
    const verified = await verifyObject(row, {
      kind: "BenchmarkRecord",
      chainId: CHAIN_ID,
      allowedSigners: [config.node.address as `0x${string}`],
    });
    const record = (verified.payload as SignedBenchmarkRecord["payload"]) ?? signed.payload;
    expect(verified.message.resultsHash).toBe(hashPayload(row?.payload));
    expect(verified.message).toMatchObject({
      node: config.node.address,
      backend: "embedded",
      modelDigest: DIGEST,
      decodeTokPerSecMilli: Math.round(record.verdicts.decodeTokPerSec * 1000),
      eligibleCapacity: 1,
    });
    expect(verified.message.expiresAt - verified.message.issuedAt).toBe(BENCHMARK_RECORD_TTL_SECONDS);
    await expect(verifyBenchmarkRecord(row, { chainId: CHAIN_ID })).resolves.toBeTruthy();

    expect(record).toMatchObject({
      mode: "micro",
      hardware,
      backend: { kind: "embedded", version: "scripted" },
      model: { id: "scripted", digest: DIGEST, sizeBytes: 1234 },
      parameters: { promptTokens: 64, genTokens: 11, repetitions: 5, warmup: 1, temperature: 0 },
      verdicts: { floorTokPerSec: 5, meetsFloor: true, eligibleCapacity: 1, failUnder: null },
      tokenCounts: { source: "usage" },
    });
    expect(record.parameters.promptTokensMeasured).toBeLessThanOrEqual(64);
    expect(record.parameters.promptCalibration).toBe("estimate");
    expect(record.metrics.map((m) => m.name)).toContain("tpotMs");
    // Arithmetic on the scripted timings (timers fire late, never early).
    const results = record.results;
    if (results.mode !== "micro") throw new Error("expected micro results");
    expect(results.summary.ttftMs.mean).toBeGreaterThanOrEqual(29);
    expect(results.summary.ttftMs.mean).toBeLessThan(30 * 4);
    expect(results.summary.tpotMs.mean).toBeGreaterThanOrEqual(9);
    expect(results.summary.tpotMs.mean).toBeLessThan(10 * 4);
    expect(record.verdicts.decodeTokPerSec).toBe(results.decodeTokPerSec);
    expect(inner.received).toHaveLength(6);
  });

  it("a changed result or message fails verification", async () => {
    const paths = await freshNode();
    await run(paths, scripted({ tokenMs: 1 }).backend, { repetitions: 2 });
    const [row] = stored(paths);
    const tamperedPayload = structuredClone(row) as SignedBenchmarkRecord;
    tamperedPayload.payload.verdicts.decodeTokPerSec *= 2;
    await expect(
      verifyObject(tamperedPayload, { kind: "BenchmarkRecord", chainId: CHAIN_ID }),
    ).rejects.toMatchObject({
      code: "PAYLOAD_HASH_MISMATCH",
    });
    const tamperedMessage = structuredClone(row) as SignedBenchmarkRecord;
    tamperedMessage.message.decodeTokPerSecMilli += 1;
    await expect(
      verifyObject(tamperedMessage, { kind: "BenchmarkRecord", chainId: CHAIN_ID }),
    ).rejects.toMatchObject({
      code: "SIGNATURE_INVALID",
    });
    await expect(verifyObject(row, { kind: "BenchmarkRecord", chainId: 1 })).rejects.toMatchObject({
      code: "WRONG_CHAIN",
    });
    const later = Date.now() + (BENCHMARK_RECORD_TTL_SECONDS + 3600) * 1000;
    await expect(
      verifyObject(row, { kind: "BenchmarkRecord", chainId: CHAIN_ID, now: () => later }),
    ).rejects.toMatchObject({ code: "EXPIRED" });
  });

  it("--fail-under: stores the record, reports it below the threshold, and the error exits 10", async () => {
    const paths = await freshNode();
    const result = await run(paths, scripted({ tokenMs: 1 }).backend, { repetitions: 1, failUnder: 1e9 });
    expect(result.belowThreshold).toBe(true);
    expect(result.signed.payload.verdicts.failUnder).toEqual({ thresholdTokPerSec: 1e9, passed: false });
    expect(stored(paths)).toHaveLength(1);
    const error = belowThresholdError(result);
    expect(error.code).toBe("BELOW_THRESHOLD");
    expect(error.exitCode).toBe(10);
    const passing = await run(paths, scripted({ tokenMs: 1 }).backend, { repetitions: 1, failUnder: 1 });
    expect(passing.belowThreshold).toBe(false);
  });

  it("--compare shows deltas against the previous record of the same mode; history lists newest first", async () => {
    const paths = await freshNode();
    const first = await run(paths, scripted({ tokenMs: 4 }).backend, { repetitions: 2, compare: true });
    expect(first.comparison).toBeNull();
    const second = await run(paths, scripted({ tokenMs: 2 }).backend, {
      repetitions: 2,
      compare: true,
      genTokens: 12,
    });
    expect(second.previous?.payload.recordId).toBe(first.signed.payload.recordId);
    const decode = second.comparison?.rows.find((row) => row.name === "decodeTokPerSec");
    expect(decode?.previous).toBe(first.signed.payload.verdicts.decodeTokPerSec);
    expect(decode?.current).toBe(second.signed.payload.verdicts.decodeTokPerSec);
    expect(decode?.delta).toBeCloseTo((decode?.current ?? 0) - (decode?.previous ?? 0), 2);
    expect(decode?.deltaPct).toBeGreaterThan(0);
    expect(second.comparison?.notes).toContain("parameters changed: genTokens");

    const history = await benchmarkHistory({ paths });
    expect(history.map((r) => r.payload.recordId)).toEqual([
      second.signed.payload.recordId,
      first.signed.payload.recordId,
    ]);
    expect(await benchmarkHistory({ paths, limit: 1 })).toHaveLength(1);
  });
});

describe("runNodeBenchmark (serve) through the node's own server", () => {
  it("sweeps to the backend's capacity and records the eligible capacity", async () => {
    const paths = await freshNode();
    const config = JSON.parse(await readFile(paths.configFile, "utf8"));
    config.backend.capacity = 2;
    await writeFile(paths.configFile, JSON.stringify(config));
    const { signed } = await run(paths, scripted({ prefillMs: 5, tokenMs: 3 }).backend, {
      mode: "serve",
      maxConcurrency: 8,
      minRequestsPerLevel: 2,
      roundsPerLevel: 1,
    });
    const results = signed.payload.results;
    if (results.mode !== "serve") throw new Error("expected serve results");
    expect(results.levels.map((l) => l.concurrency)).toEqual([1, 2]);
    expect(results.stop.reason).toBe("capacity");
    expect(results.endpoint).toBe("node server (in process)");
    expect(signed.payload.verdicts).toMatchObject({ eligibleCapacity: 2, meetsFloor: true });
    expect(signed.message.eligibleCapacity).toBe(2);
    expect(signed.payload.parameters).toMatchObject({ maxConcurrency: 8, capacity: 2, repetitions: null });
    await expect(verifyBenchmarkRecord(stored(paths)[0], { chainId: CHAIN_ID })).resolves.toBeTruthy();
  });
});

describe("runNodeBenchmark: bad input stores nothing", () => {
  it("unreachable backend → BACKEND_UNREACHABLE (real Ollama adapter on a closed port)", async () => {
    const paths = await freshNode();
    const config = JSON.parse(await readFile(paths.configFile, "utf8"));
    config.backend = { kind: "ollama", url: "http://127.0.0.1:1", model: "llama3" };
    await writeFile(paths.configFile, JSON.stringify(config));
    const error = await runNodeBenchmark({ paths, probeHardware: async () => hardware }).catch(
      (e: unknown) => e,
    );
    expect(isGbtError(error, "BACKEND_UNREACHABLE")).toBe(true);
    expect((error as GbtError).exitCode).toBe(5);
    expect(stored(paths)).toHaveLength(0);
  });

  it("missing model → MODEL_NOT_FOUND; zero concurrency → INVALID_INPUT; prompt over the context → CONTEXT_LENGTH_EXCEEDED", async () => {
    const paths = await freshNode();
    const { backend, closed } = scripted();
    await expect(
      run(paths, backend, { buildBackend: async () => ({ backend, defaultModel: "missing" }) }),
    ).rejects.toMatchObject({ code: "MODEL_NOT_FOUND" });
    expect(closed()).toBe(1);
    await expect(run(paths, backend, { mode: "serve", maxConcurrency: 0 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(run(paths, scripted({}, 512).backend, { promptTokens: 1000 })).rejects.toMatchObject({
      code: "CONTEXT_LENGTH_EXCEEDED",
    });
    // A context the listing does not reveal: the backend's own refusal comes through.
    const hidden = createScriptedBackend({ contextLength: 20 });
    await expect(
      run(paths, hidden, { buildBackend: async () => ({ backend: hidden, defaultModel: "scripted" }) }),
    ).rejects.toMatchObject({ code: "CONTEXT_LENGTH_EXCEEDED" });
    await expect(run(paths, backend, { url: "http://127.0.0.1:1" })).rejects.toMatchObject({ code: "USAGE" });
    expect(stored(paths)).toHaveLength(0);
  });

  it("an abort (Ctrl-C) → INTERRUPTED, nothing stored, backend closed", async () => {
    const paths = await freshNode();
    const { backend, closed } = scripted({ tokenMs: 10 });
    const controller = new AbortController();
    const pending = run(paths, backend, {
      genTokens: 100,
      signal: controller.signal,
      // Abort in the middle of the first measured repetition.
      onProgress: (p) => {
        if (p.phase === "warmup") setTimeout(() => controller.abort(), 300);
      },
    });
    const error = await pending.catch((e: unknown) => e);
    expect(isGbtError(error, "INTERRUPTED")).toBe(true);
    expect((error as GbtError).exitCode).toBe(130);
    expect(closed()).toBe(1);
    expect(stored(paths)).toHaveLength(0);
  });

  it("a node that is not set up → NOT_SET_UP", async () => {
    const paths = resolvePaths({ GBT_HOME: await mkdtemp(join(tmpdir(), "gbt-bench-")) });
    await expect(runNodeBenchmark({ paths })).rejects.toMatchObject({ code: "NOT_SET_UP" });
  });
});
