/**
 * The arithmetic of `gbt node benchmark`: summary statistics and the per-request metrics, with
 * every metric's definition kept as data so that `--help`, the human table and the signed JSON
 * record all say the same thing. Everything here is a pure function of timestamps and counts;
 * nothing reads a clock.
 *
 * Percentiles use linear interpolation between closest ranks (numpy's default, Hyndman–Fan
 * type 7): for sorted x of length n, p ∈ [0, 100], h = (n − 1)·p/100, the result is
 * x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). The standard deviation is the sample one (n − 1).
 */

/** How a metric is defined: shown by `--help`, rendered in tables, embedded in every record. */
export interface MetricDefinition {
  /** Field name used in the JSON results. */
  name: string;
  /** Short label for tables. */
  label: string;
  unit: "ms" | "tok/s" | "req/s" | "count" | "%";
  definition: string;
}

/** Every metric gbt's benchmark reports, in the order tables show them. */
export const benchmarkMetrics = [
  {
    name: "ttftMs",
    label: "TTFT",
    unit: "ms",
    definition:
      "Time to first token: from sending the request to the first streamed chunk that carries generated text (client clock).",
  },
  {
    name: "tpotMs",
    label: "TPOT",
    unit: "ms",
    definition:
      "Time per output token after the first: (e2e latency − TTFT) / (output tokens − 1). Undefined for a one-token output.",
  },
  {
    name: "itlMs",
    label: "ITL",
    unit: "ms",
    definition:
      "Inter-token latency: the gaps between consecutive streamed chunks of one request (pooled over requests; a chunk may carry more than one token).",
  },
  {
    name: "e2eMs",
    label: "e2e latency",
    unit: "ms",
    definition: "End-to-end latency: from sending the request to its final event (the one carrying usage).",
  },
  {
    name: "prefillTokPerSec",
    label: "prefill",
    unit: "tok/s",
    definition: "Prompt processing rate of one request: prompt tokens / TTFT.",
  },
  {
    name: "decodeTokPerSec",
    label: "decode",
    unit: "tok/s",
    definition: "Per-request decode rate: (output tokens − 1) / (e2e latency − TTFT), i.e. 1000 / TPOT.",
  },
  {
    name: "systemTokPerSec",
    label: "system",
    unit: "tok/s",
    definition:
      "System throughput at one concurrency level: output tokens of all successful requests / the level's wall time (first request sent to last request done).",
  },
  {
    name: "requestsPerSec",
    label: "requests",
    unit: "req/s",
    definition: "Successful requests completed at one concurrency level / the level's wall time.",
  },
  {
    name: "errors",
    label: "errors",
    unit: "count",
    definition: "Requests that failed (HTTP error, stream error, refused for capacity) at one level.",
  },
  {
    name: "clockDiffPct",
    label: "clock cross-check",
    unit: "%",
    definition:
      "(client-measured rate − the backend's own rate) / the backend's own rate × 100, for decode (and prefill) over the same requests; the backend's rate is its reported tokens / its reported duration (llama.cpp timings, Ollama eval_duration…).",
  },
] as const satisfies readonly MetricDefinition[];

/** How the summary statistics are computed (embedded in records next to the metric definitions). */
export const statisticsDefinition =
  "mean; sd = sample standard deviation (n − 1; null when n < 2); p50/p90/p95/p99 = percentiles by linear interpolation between closest ranks (numpy's default); min; max.";

/** Token counts are the backend's own (usage) unless it reported none; then an estimate, flagged. */
export type TokenCountSource = "usage" | "estimate";

/** How a token count is estimated when the backend reports none: chunks carrying text, or characters / 4. */
export const tokenEstimateDefinition =
  "estimate (the backend reported no usage): output tokens = streamed chunks carrying text, prompt tokens = characters / 4.";

export interface Summary {
  count: number;
  mean: number | null;
  sd: number | null;
  min: number | null;
  max: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

/** Percentile `p` (0–100) of `values` by linear interpolation between closest ranks; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return percentileOfSorted(sorted, p);
}

function percentileOfSorted(sorted: readonly number[], p: number): number {
  const h = ((sorted.length - 1) * p) / 100;
  const lower = Math.floor(h);
  const low = sorted[lower] as number;
  const high = sorted[Math.min(lower + 1, sorted.length - 1)] as number;
  return low + (h - lower) * (high - low);
}

/** Arithmetic mean; null when empty. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function sampleSd(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values) as number;
  let squares = 0;
  for (const value of values) squares += (value - m) ** 2;
  return Math.sqrt(squares / (values.length - 1));
}

/** Count, mean, sample sd, min, max and p50/p90/p95/p99 of the finite values given. */
export function summarize(values: readonly (number | null | undefined)[]): Summary {
  const finite = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  if (finite.length === 0) {
    return {
      count: 0,
      mean: null,
      sd: null,
      min: null,
      max: null,
      p50: null,
      p90: null,
      p95: null,
      p99: null,
    };
  }
  const sorted = [...finite].sort((a, b) => a - b);
  return {
    count: sorted.length,
    mean: mean(sorted),
    sd: sampleSd(sorted),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    p50: percentileOfSorted(sorted, 50),
    p90: percentileOfSorted(sorted, 90),
    p95: percentileOfSorted(sorted, 95),
    p99: percentileOfSorted(sorted, 99),
  };
}

/** (max − min) / mean × 100 of a set of runs: the spread the quality goal bounds. */
export function variationPct(values: readonly number[]): number | null {
  const m = mean(values);
  if (m === null || m === 0) return null;
  return ((Math.max(...values) - Math.min(...values)) / m) * 100;
}

/** (measured − reference) / reference × 100; null when either is missing or the reference is 0. */
export function diffPct(
  measured: number | null | undefined,
  reference: number | null | undefined,
): number | null {
  if (measured == null || reference == null || reference === 0) return null;
  if (!Number.isFinite(measured) || !Number.isFinite(reference)) return null;
  return ((measured - reference) / reference) * 100;
}

/** What the client saw of one streamed request, on one monotonic clock (ms). */
export interface RequestObservation {
  startMs: number;
  /** Arrival times of the chunks that carried generated text, in order. */
  chunkTimesMs: readonly number[];
  /** Arrival of the final event (usage). */
  endMs: number;
  promptTokens: number;
  completionTokens: number;
}

/** The per-request metrics of {@link benchmarkMetrics}; null where undefined (no text, one token…). */
export interface RequestMetrics {
  ttftMs: number | null;
  tpotMs: number | null;
  itlMs: number[];
  e2eMs: number;
  prefillTokPerSec: number | null;
  decodeTokPerSec: number | null;
  promptTokens: number;
  completionTokens: number;
}

/** Computes TTFT, TPOT, ITL, e2e, prefill and decode rates of one request from what the client saw. */
export function requestMetrics(observation: RequestObservation): RequestMetrics {
  const { startMs, chunkTimesMs, endMs, promptTokens, completionTokens } = observation;
  const first = chunkTimesMs[0];
  const ttftMs = first === undefined ? null : first - startMs;
  const e2eMs = endMs - startMs;
  const itlMs: number[] = [];
  for (let i = 1; i < chunkTimesMs.length; i++) {
    itlMs.push((chunkTimesMs[i] as number) - (chunkTimesMs[i - 1] as number));
  }
  const decodeWindow = ttftMs === null ? 0 : e2eMs - ttftMs;
  const tpotMs = ttftMs !== null && completionTokens >= 2 ? decodeWindow / (completionTokens - 1) : null;
  return {
    ttftMs,
    tpotMs,
    itlMs,
    e2eMs,
    prefillTokPerSec:
      ttftMs !== null && ttftMs > 0 && promptTokens > 0 ? (promptTokens / ttftMs) * 1000 : null,
    decodeTokPerSec:
      tpotMs !== null && decodeWindow > 0 ? ((completionTokens - 1) / decodeWindow) * 1000 : null,
    promptTokens,
    completionTokens,
  };
}

/** The backend's own rates from its reported timings (tokens / its duration); null where it reported none. */
export function backendRates(
  timings: { promptMs?: number; decodeMs?: number; promptTokens?: number; decodeTokens?: number } | undefined,
): { prefillTokPerSec: number | null; decodeTokPerSec: number | null } {
  const rate = (tokens: number | undefined, ms: number | undefined) =>
    tokens !== undefined && ms !== undefined && ms > 0 && tokens > 0 ? (tokens / ms) * 1000 : null;
  return {
    prefillTokPerSec: rate(timings?.promptTokens, timings?.promptMs),
    decodeTokPerSec: rate(timings?.decodeTokens, timings?.decodeMs),
  };
}

/** Estimated prompt tokens from text (characters / 4): the flagged fallback when a backend reports no usage. */
export function estimateTokensFromText(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** Rounds to `digits` decimals, keeping records readable and JSON-stable; null stays null. */
export function round(value: number | null, digits = 3): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** {@link round} over every field of a summary. */
export function roundSummary(summary: Summary, digits = 3): Summary {
  return {
    count: summary.count,
    mean: round(summary.mean, digits),
    sd: round(summary.sd, digits),
    min: round(summary.min, digits),
    max: round(summary.max, digits),
    p50: round(summary.p50, digits),
    p90: round(summary.p90, digits),
    p95: round(summary.p95, digits),
    p99: round(summary.p99, digits),
  };
}
