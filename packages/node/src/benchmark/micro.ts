/**
 * Micro mode, in the spirit of llama-bench: one stream straight on a Backend (no HTTP), a fixed
 * synthetic prompt of ~N tokens, M generated tokens (temperature 0, fixed seed), warm-up runs that
 * are not measured, then R measured repetitions summarised as mean ± sd. The client clock is
 * cross-checked against the backend's own durations (BackendTimings) over the same runs, and the
 * harness measures its own cost: the time spent outside the backend's iterator, per token.
 */
import { GbtError, isGbtError } from "@gbt/protocol";
import type { Backend, BackendTimings, ChatMessage, FinishReason } from "../backends/types.js";
import {
  backendRates,
  diffPct,
  type RequestMetrics,
  requestMetrics,
  round,
  roundSummary,
  type Summary,
  summarize,
  type TokenCountSource,
  variationPct,
} from "./stats.js";

export const DEFAULT_SEED = 42;

export interface MicroBenchmarkOptions {
  model: string;
  /** Prompt chat for request `index` (the synthetic prompt with its nonce). */
  messages: (index: number) => ChatMessage[];
  genTokens: number;
  repetitions: number;
  warmup: number;
  seed?: number;
  signal?: AbortSignal;
  /** Called after each run (warm-up or measured). */
  onRun?: (run: { phase: "warmup" | "measure"; completed: number; total: number }) => void;
}

/** One measured repetition. Times in ms, rates in tok/s, rounded to 0.001. */
export interface MicroRepetition {
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  ttftMs: number | null;
  tpotMs: number | null;
  e2eMs: number;
  prefillTokPerSec: number | null;
  decodeTokPerSec: number | null;
  /** The backend's own durations and rates for this run, when it reported them. */
  backend: {
    promptMs: number | null;
    decodeMs: number | null;
    prefillTokPerSec: number | null;
    decodeTokPerSec: number | null;
  } | null;
  /** Time the harness spent outside the backend's iterator, per output token. */
  harnessMsPerToken: number | null;
}

export interface MicroResults {
  mode: "micro";
  repetitions: MicroRepetition[];
  summary: {
    ttftMs: Summary;
    tpotMs: Summary;
    itlMs: Summary;
    e2eMs: Summary;
    prefillTokPerSec: Summary;
    decodeTokPerSec: Summary;
    backendPrefillTokPerSec: Summary;
    backendDecodeTokPerSec: Summary;
    harnessMsPerToken: Summary;
  };
  /** Mean per-request decode rate over the repetitions: the record's headline number. */
  decodeTokPerSec: number;
  /** (max − min) / mean × 100 of the repetitions' decode rates. */
  decodeVariationPct: number | null;
  crossCheck: {
    /** Where the backend's durations came from (BackendTimings.source), or null. */
    source: string | null;
    /** (client mean − backend mean) / backend mean × 100, decode rate. */
    decodeDiffPct: number | null;
    prefillDiffPct: number | null;
  };
  errors: number;
  tokenCounts: TokenCountSource;
}

/** What one run gave: client metrics, the backend's timings, and the harness's own time. */
export interface MicroRunObservation {
  metrics: RequestMetrics;
  finishReason: FinishReason;
  timings: BackendTimings | undefined;
  harnessMs: number;
  tokenCounts: TokenCountSource;
}

function interrupted(): GbtError {
  return new GbtError("INTERRUPTED", "The benchmark was interrupted; nothing was stored.");
}

/** Streams one request and records what the client saw, timing the backend's iterator separately. */
async function observeRun(
  backend: Backend,
  options: MicroBenchmarkOptions,
  index: number,
): Promise<MicroRunObservation> {
  const messages = options.messages(index);
  const startMs = performance.now();
  const iterator = backend
    .chatStream({
      model: options.model,
      messages,
      maxTokens: options.genTokens,
      temperature: 0,
      seed: options.seed ?? DEFAULT_SEED,
      ...(options.signal ? { signal: options.signal } : {}),
    })
    [Symbol.asyncIterator]();
  const chunkTimesMs: number[] = [];
  let insideMs = 0;
  let chunks = 0;
  try {
    for (;;) {
      const before = performance.now();
      const step = await iterator.next();
      const after = performance.now();
      insideMs += after - before;
      if (step.done) throw new GbtError("INTERNAL", "The backend's stream ended without a final event.");
      const event = step.value;
      if (event.type === "delta") {
        if (event.text !== "") {
          chunkTimesMs.push(after);
          chunks++;
        }
        continue;
      }
      if (event.type === "tool_call") continue;
      if (event.finishReason === "abort" || options.signal?.aborted) throw interrupted();
      const endMs = after;
      const estimated = event.usage.completionTokens === 0 && chunks > 0;
      const completionTokens = estimated ? chunks : event.usage.completionTokens;
      const metrics = requestMetrics({
        startMs,
        chunkTimesMs,
        endMs,
        promptTokens: event.usage.promptTokens,
        completionTokens,
      });
      return {
        metrics,
        finishReason: event.finishReason,
        timings: event.timings,
        harnessMs: Math.max(0, endMs - startMs - insideMs),
        tokenCounts: estimated ? "estimate" : "usage",
      };
    }
  } catch (error) {
    if (options.signal?.aborted) throw interrupted();
    throw error;
  } finally {
    await iterator.return?.().catch(() => undefined);
  }
}

/** Runs the micro benchmark on `backend`; throws the first failure (a benchmark with errors is not a result). */
export async function runMicroBenchmark(
  backend: Backend,
  options: MicroBenchmarkOptions,
): Promise<MicroResults> {
  const { repetitions, warmup, genTokens } = options;
  if (!Number.isInteger(repetitions) || repetitions < 1) {
    throw new GbtError("INVALID_INPUT", `Repetitions must be a positive integer, got ${repetitions}.`);
  }
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new GbtError("INVALID_INPUT", `Warm-up runs must be a non-negative integer, got ${warmup}.`);
  }
  if (!Number.isInteger(genTokens) || genTokens < 2) {
    throw new GbtError(
      "INVALID_INPUT",
      `Generated tokens must be an integer of at least 2, got ${genTokens}.`,
      {
        hint: "TPOT and the decode rate need at least two output tokens.",
      },
    );
  }
  const total = warmup + repetitions;
  for (let i = 0; i < warmup; i++) {
    if (options.signal?.aborted) throw interrupted();
    await observeRun(backend, options, i);
    options.onRun?.({ phase: "warmup", completed: i + 1, total });
  }
  const runs: MicroRunObservation[] = [];
  for (let i = 0; i < repetitions; i++) {
    if (options.signal?.aborted) throw interrupted();
    try {
      runs.push(await observeRun(backend, options, warmup + i));
    } catch (error) {
      if (isGbtError(error)) throw error;
      throw new GbtError("INTERNAL", `Repetition ${i + 1} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    options.onRun?.({ phase: "measure", completed: warmup + i + 1, total });
  }
  return summarizeMicroRuns(runs);
}

/** Builds the micro results from measured runs (exported for tests with synthetic observations). */
export function summarizeMicroRuns(runs: readonly MicroRunObservation[]): MicroResults {
  const repetitions: MicroRepetition[] = runs.map((run) => {
    const own = backendRates(run.timings);
    const tokens = run.metrics.completionTokens;
    return {
      promptTokens: run.metrics.promptTokens,
      completionTokens: tokens,
      finishReason: run.finishReason,
      ttftMs: round(run.metrics.ttftMs),
      tpotMs: round(run.metrics.tpotMs),
      e2eMs: round(run.metrics.e2eMs) as number,
      prefillTokPerSec: round(run.metrics.prefillTokPerSec),
      decodeTokPerSec: round(run.metrics.decodeTokPerSec),
      backend: run.timings
        ? {
            promptMs: round(run.timings.promptMs ?? null),
            decodeMs: round(run.timings.decodeMs ?? null),
            prefillTokPerSec: round(own.prefillTokPerSec),
            decodeTokPerSec: round(own.decodeTokPerSec),
          }
        : null,
      harnessMsPerToken: tokens > 0 ? round(run.harnessMs / tokens, 6) : null,
    };
  });
  const decode = runs.map((run) => run.metrics.decodeTokPerSec).filter((v): v is number => v !== null);
  const prefill = runs.map((run) => run.metrics.prefillTokPerSec);
  const ownRates = runs.map((run) => backendRates(run.timings));
  const summary = {
    ttftMs: summarize(runs.map((run) => run.metrics.ttftMs)),
    tpotMs: summarize(runs.map((run) => run.metrics.tpotMs)),
    itlMs: summarize(runs.flatMap((run) => run.metrics.itlMs)),
    e2eMs: summarize(runs.map((run) => run.metrics.e2eMs)),
    prefillTokPerSec: summarize(prefill),
    decodeTokPerSec: summarize(decode),
    backendPrefillTokPerSec: summarize(ownRates.map((rates) => rates.prefillTokPerSec)),
    backendDecodeTokPerSec: summarize(ownRates.map((rates) => rates.decodeTokPerSec)),
    harnessMsPerToken: summarize(
      runs.map((run) =>
        run.metrics.completionTokens > 0 ? run.harnessMs / run.metrics.completionTokens : null,
      ),
    ),
  };
  return {
    mode: "micro",
    repetitions,
    summary: {
      ttftMs: roundSummary(summary.ttftMs),
      tpotMs: roundSummary(summary.tpotMs),
      itlMs: roundSummary(summary.itlMs),
      e2eMs: roundSummary(summary.e2eMs),
      prefillTokPerSec: roundSummary(summary.prefillTokPerSec),
      decodeTokPerSec: roundSummary(summary.decodeTokPerSec),
      backendPrefillTokPerSec: roundSummary(summary.backendPrefillTokPerSec),
      backendDecodeTokPerSec: roundSummary(summary.backendDecodeTokPerSec),
      harnessMsPerToken: roundSummary(summary.harnessMsPerToken, 6),
    },
    decodeTokPerSec: round(summary.decodeTokPerSec.mean) ?? 0,
    decodeVariationPct: round(variationPct(decode)),
    crossCheck: {
      source: runs.find((run) => run.timings)?.timings?.source ?? null,
      decodeDiffPct: round(diffPct(summary.decodeTokPerSec.mean, summary.backendDecodeTokPerSec.mean)),
      prefillDiffPct: round(diffPct(summary.prefillTokPerSec.mean, summary.backendPrefillTokPerSec.mean)),
    },
    errors: 0,
    tokenCounts: runs.some((run) => run.tokenCounts === "estimate") ? "estimate" : "usage",
  };
}
