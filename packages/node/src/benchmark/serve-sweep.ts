/**
 * Serve mode: a concurrency sweep through an OpenAI-compatible HTTP endpoint (the node's own
 * server, or any URL), measured from the client the way a consumer sees it. At each level
 * 1, 2, 4, … `c` streams run closed-loop (each sends its next request when the last one ends)
 * until the level's requests are done; every request streams with `include_usage`, so token counts
 * are the server's own. The sweep stops at the knee: system throughput gained less than
 * `minGainPct` over the previous level, TTFT p99 went over its target, the backend's capacity was
 * reached (or it answered 429), a request failed, or the highest concurrency asked for was done.
 *
 * Verdicts: a stream meets the floor when its decode rate is at least `floorTokPerSec`; the
 * eligible capacity is the highest concurrency at which every request succeeded and every stream
 * stayed at or above the floor (0 when none did).
 */
import { setMaxListeners } from "node:events";
import { GbtError } from "@gbt/protocol";
import type { ChatMessage } from "../backends/types.js";
import { DEFAULT_SEED } from "./micro.js";
import {
  backendRates,
  diffPct,
  round,
  roundSummary,
  type Summary,
  summarize,
  type TokenCountSource,
} from "./stats.js";
import { chatCompletionsUrl, type StreamOutcome, streamChatCompletion } from "./stream-client.js";

/** The network's per-stream floor: a node slower than this per stream is not routed to. */
export const FLOOR_TOK_PER_SEC = 5;
export const DEFAULT_MIN_GAIN_PCT = 5;
export const DEFAULT_TTFT_P99_TARGET_MS = 5_000;
export const DEFAULT_MAX_CONCURRENCY = 32;

export type SweepStopReason = "knee" | "ttft-target" | "capacity" | "errors" | "max-concurrency";

export interface ServeLevel {
  concurrency: number;
  /** Requests sent at this level. */
  requests: number;
  succeeded: number;
  errors: number;
  /** Failed requests by error code (`over_capacity`, `unreachable`, a server's code…). */
  errorCodes: Record<string, number>;
  wallMs: number;
  systemTokPerSec: number;
  requestsPerSec: number;
  /** System throughput gain over the previous level, %; null at the first level. */
  gainPct: number | null;
  ttftMs: Summary;
  tpotMs: Summary;
  itlMs: Summary;
  e2eMs: Summary;
  prefillTokPerSec: Summary;
  decodeTokPerSec: Summary;
  /** The server's own decode rate (its timings), when it reports them. */
  backendDecodeTokPerSec: Summary;
  backendPrefillTokPerSec: Summary;
  /** The slowest stream's decode rate at this level. */
  minStreamDecodeTokPerSec: number | null;
  /** No error, and every stream's decode rate ≥ the floor. */
  allStreamsAboveFloor: boolean;
}

export interface ServeResults {
  mode: "serve";
  /** What was measured: "node server (in process)" or the URL given. */
  endpoint: string;
  levels: ServeLevel[];
  stop: { reason: SweepStopReason; concurrency: number; detail: string };
  /** The level with the highest system throughput among those without errors. */
  kneeConcurrency: number;
  /** Mean per-request decode rate at concurrency 1: the record's headline number. */
  decodeTokPerSec: number;
  floorTokPerSec: number;
  eligibleCapacity: number;
  crossCheck: { source: string | null; decodeDiffPct: number | null; prefillDiffPct: number | null };
  errors: number;
  tokenCounts: TokenCountSource;
}

export interface ServeSweepOptions {
  /** Server root (`http://host:port`) or its `/v1` base. */
  url: string;
  apiKey?: string;
  model: string;
  /** Prompt chat of request `index` (the synthetic prompt with its nonce). */
  messages: (index: number) => ChatMessage[];
  genTokens: number;
  maxConcurrency?: number;
  /** Requests the backend generates at once, when known: the sweep never goes beyond it. */
  capacity?: number;
  ttftP99TargetMs?: number;
  minGainPct?: number;
  floorTokPerSec?: number;
  /** Requests per level: `max(minRequestsPerLevel, roundsPerLevel × concurrency)` (defaults 8 and 2). */
  minRequestsPerLevel?: number;
  roundsPerLevel?: number;
  seed?: number;
  signal?: AbortSignal;
  /** Called after each request ends (and once before each level with completed 0). */
  onRequest?: (progress: {
    concurrency: number;
    completed: number;
    total: number;
    level: number;
    levels: number;
  }) => void;
}

/** The sweep's levels: 1, 2, 4, … up to the limit, and the limit itself when it is not a power of two. */
export function concurrencyLevels(maxConcurrency: number, capacity?: number): number[] {
  const limit = Math.min(maxConcurrency, capacity ?? maxConcurrency);
  const levels: number[] = [];
  for (let c = 1; c <= limit; c *= 2) levels.push(c);
  if (levels.at(-1) !== limit && limit >= 1) levels.push(limit);
  return levels;
}

/** Does every stream of the level meet the floor (and did every request succeed)? */
export function levelMeetsFloor(
  level: Pick<ServeLevel, "errors" | "succeeded" | "minStreamDecodeTokPerSec">,
  floor: number,
): boolean {
  return (
    level.errors === 0 &&
    level.succeeded > 0 &&
    level.minStreamDecodeTokPerSec !== null &&
    level.minStreamDecodeTokPerSec >= floor
  );
}

/** The highest concurrency at which every stream stayed at or above the floor; 0 when none did. */
export function eligibleCapacity(
  levels: readonly Pick<ServeLevel, "concurrency" | "errors" | "succeeded" | "minStreamDecodeTokPerSec">[],
  floor: number = FLOOR_TOK_PER_SEC,
): number {
  let best = 0;
  for (const level of levels)
    if (levelMeetsFloor(level, floor) && level.concurrency > best) best = level.concurrency;
  return best;
}

export interface StopRules {
  minGainPct: number;
  ttftP99TargetMs: number;
  /** The last planned level. */
  lastConcurrency: number;
  /** Whether the last planned level is the backend's capacity (rather than the asked maximum). */
  lastIsCapacity: boolean;
}

/** Whether the sweep stops after `levels.at(-1)`, and why. */
export function sweepStop(
  levels: readonly Pick<ServeLevel, "concurrency" | "errors" | "errorCodes" | "gainPct" | "ttftMs">[],
  rules: StopRules,
): { reason: SweepStopReason; detail: string } | null {
  const level = levels.at(-1);
  if (!level) return null;
  const overCapacity = level.errorCodes.over_capacity ?? 0;
  if (level.errors > overCapacity) {
    return {
      reason: "errors",
      detail: `${level.errors - overCapacity} request(s) failed at concurrency ${level.concurrency}`,
    };
  }
  if (overCapacity > 0) {
    return {
      reason: "capacity",
      detail: `the server refused ${overCapacity} request(s) for capacity at concurrency ${level.concurrency}`,
    };
  }
  const p99 = level.ttftMs.p99;
  if (p99 !== null && p99 > rules.ttftP99TargetMs) {
    return {
      reason: "ttft-target",
      detail: `TTFT p99 ${p99.toFixed(0)} ms is over the ${rules.ttftP99TargetMs} ms target at concurrency ${level.concurrency}`,
    };
  }
  if (level.gainPct !== null && level.gainPct < rules.minGainPct) {
    return {
      reason: "knee",
      detail: `system throughput gained ${level.gainPct.toFixed(1)}% (< ${rules.minGainPct}%) going to concurrency ${level.concurrency}`,
    };
  }
  if (level.concurrency >= rules.lastConcurrency) {
    return rules.lastIsCapacity
      ? { reason: "capacity", detail: `concurrency ${level.concurrency} is the backend's capacity` }
      : { reason: "max-concurrency", detail: `concurrency ${level.concurrency} is the highest asked for` };
  }
  return null;
}

function interrupted(): GbtError {
  return new GbtError("INTERRUPTED", "The benchmark was interrupted; nothing was stored.");
}

/** A GbtError for a request that failed before the sweep began (the warm-up): the user's problem, named. */
export function warmupError(
  outcome: Extract<StreamOutcome, { ok: false }>,
  endpoint: string,
  model: string,
): GbtError {
  switch (outcome.code) {
    case "unreachable":
      return new GbtError("BACKEND_UNREACHABLE", `Nothing answers at ${endpoint}: ${outcome.message}`, {
        details: { endpoint },
        hint: "Start the server, or check the URL.",
      });
    case "model_not_found":
      return new GbtError("MODEL_NOT_FOUND", outcome.message, {
        details: { model },
        hint: "Choose a served model with --model.",
      });
    case "context_length_exceeded":
      return new GbtError("CONTEXT_LENGTH_EXCEEDED", outcome.message, {
        hint: "Use a smaller --prompt-tokens / --gen-tokens.",
      });
    case "over_capacity":
      return new GbtError("BUSY", `The server at ${endpoint} is at capacity: ${outcome.message}`);
    case "backend_unreachable":
      return new GbtError("BACKEND_UNREACHABLE", outcome.message);
    default:
      return new GbtError(
        "BACKEND_UNREACHABLE",
        `The warm-up request failed (${outcome.code}): ${outcome.message}`,
        {
          details: { endpoint, status: outcome.status, code: outcome.code },
        },
      );
  }
}

/** Builds a level's statistics from its outcomes (exported for tests with synthetic outcomes). */
export function summarizeLevel(
  concurrency: number,
  outcomes: readonly StreamOutcome[],
  wallMs: number,
  previous: ServeLevel | undefined,
  floor: number,
): ServeLevel {
  const ok = outcomes.filter((o): o is Extract<StreamOutcome, { ok: true }> => o.ok);
  const errorCodes: Record<string, number> = {};
  for (const outcome of outcomes)
    if (!outcome.ok) errorCodes[outcome.code] = (errorCodes[outcome.code] ?? 0) + 1;
  const outputTokens = ok.reduce((sum, o) => sum + o.metrics.completionTokens, 0);
  const systemTokPerSec = wallMs > 0 ? (outputTokens / wallMs) * 1000 : 0;
  const decode = ok.map((o) => o.metrics.decodeTokPerSec);
  const finiteDecode = decode.filter((v): v is number => v !== null);
  const own = ok.map((o) => backendRates(o.timings));
  const level: ServeLevel = {
    concurrency,
    requests: outcomes.length,
    succeeded: ok.length,
    errors: outcomes.length - ok.length,
    errorCodes,
    wallMs: round(wallMs) as number,
    systemTokPerSec: round(systemTokPerSec) as number,
    requestsPerSec: round(wallMs > 0 ? (ok.length / wallMs) * 1000 : 0) as number,
    gainPct:
      previous && previous.systemTokPerSec > 0
        ? round(((systemTokPerSec - previous.systemTokPerSec) / previous.systemTokPerSec) * 100)
        : null,
    ttftMs: roundSummary(summarize(ok.map((o) => o.metrics.ttftMs))),
    tpotMs: roundSummary(summarize(ok.map((o) => o.metrics.tpotMs))),
    itlMs: roundSummary(summarize(ok.flatMap((o) => o.metrics.itlMs))),
    e2eMs: roundSummary(summarize(ok.map((o) => o.metrics.e2eMs))),
    prefillTokPerSec: roundSummary(summarize(ok.map((o) => o.metrics.prefillTokPerSec))),
    decodeTokPerSec: roundSummary(summarize(decode)),
    backendDecodeTokPerSec: roundSummary(summarize(own.map((r) => r.decodeTokPerSec))),
    backendPrefillTokPerSec: roundSummary(summarize(own.map((r) => r.prefillTokPerSec))),
    // A successful stream without a decode rate (fewer than two tokens) cannot prove the floor.
    minStreamDecodeTokPerSec:
      finiteDecode.length === ok.length && ok.length > 0 ? round(Math.min(...finiteDecode)) : null,
    allStreamsAboveFloor: false,
  };
  level.allStreamsAboveFloor = levelMeetsFloor(level, floor);
  return level;
}

/** Runs the sweep against `options.url`. Throws INTERRUPTED on abort, the warm-up's error when it fails. */
export async function runServeSweep(options: ServeSweepOptions): Promise<ServeResults> {
  const maxConcurrency = options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
    throw new GbtError(
      "INVALID_INPUT",
      `The maximum concurrency must be a positive integer, got ${maxConcurrency}.`,
      {
        hint: "Use --max-concurrency 1 or more.",
      },
    );
  }
  if (!Number.isInteger(options.genTokens) || options.genTokens < 2) {
    throw new GbtError(
      "INVALID_INPUT",
      `Generated tokens must be an integer of at least 2, got ${options.genTokens}.`,
    );
  }
  const floor = options.floorTokPerSec ?? FLOOR_TOK_PER_SEC;
  const endpoint = chatCompletionsUrl(options.url);
  const levels = concurrencyLevels(maxConcurrency, options.capacity);
  const rules: StopRules = {
    minGainPct: options.minGainPct ?? DEFAULT_MIN_GAIN_PCT,
    ttftP99TargetMs: options.ttftP99TargetMs ?? DEFAULT_TTFT_P99_TARGET_MS,
    lastConcurrency: levels.at(-1) ?? 1,
    lastIsCapacity: options.capacity !== undefined && options.capacity < maxConcurrency,
  };
  // One internal signal for every fetch: undici keeps an abort listener per request until it is
  // collected, which would trip the caller's signal's listener warning on a long sweep.
  const internal = new AbortController();
  setMaxListeners(0, internal.signal);
  const forward = () => internal.abort(options.signal?.reason);
  if (options.signal?.aborted) forward();
  options.signal?.addEventListener("abort", forward, { once: true });
  try {
    return await sweepLevels(options, internal.signal, endpoint, levels, rules, floor);
  } finally {
    options.signal?.removeEventListener("abort", forward);
  }
}

async function sweepLevels(
  options: ServeSweepOptions,
  fetchSignal: AbortSignal,
  endpoint: string,
  levels: number[],
  rules: StopRules,
  floor: number,
): Promise<ServeResults> {
  const minRequests = options.minRequestsPerLevel ?? 8;
  const rounds = options.roundsPerLevel ?? 2;
  let requestIndex = 0;
  let estimated = false;
  const send = async (): Promise<StreamOutcome> => {
    const messages = options.messages(requestIndex++);
    const outcome = await streamChatCompletion(
      endpoint,
      {
        model: options.model,
        messages,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: options.genTokens,
        temperature: 0,
        seed: options.seed ?? DEFAULT_SEED,
        // llama.cpp server and vLLM honour this: the M tokens asked for are generated even past an end token.
        ignore_eos: true,
      },
      {
        ...(options.apiKey ? { apiKey: options.apiKey } : {}),
        signal: fetchSignal,
        promptText: messages.map((m) => m.content).join("\n"),
      },
    );
    if (outcome.ok && outcome.tokenCounts === "estimate") estimated = true;
    return outcome;
  };
  const guard = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (options.signal?.aborted) throw interrupted();
      throw error;
    }
  };

  // Warm-up: one request, not measured; its failure is a clear error (unreachable, no such model…).
  const warm = await guard(send);
  if (!warm.ok) throw warmupError(warm, endpoint, options.model);

  const measured: ServeLevel[] = [];
  let stop: { reason: SweepStopReason; detail: string } | null = null;
  for (const [levelIndex, concurrency] of levels.entries()) {
    if (options.signal?.aborted) throw interrupted();
    const total = Math.max(minRequests, rounds * concurrency);
    const outcomes: StreamOutcome[] = [];
    let next = 0;
    const report = () =>
      options.onRequest?.({
        concurrency,
        completed: outcomes.length,
        total,
        level: levelIndex + 1,
        levels: levels.length,
      });
    report();
    const started = performance.now();
    const worker = async () => {
      while (next < total) {
        next++;
        outcomes.push(await send());
        report();
      }
    };
    await guard(() => Promise.all(Array.from({ length: concurrency }, worker)));
    const wallMs = performance.now() - started;
    if (options.signal?.aborted) throw interrupted();
    measured.push(summarizeLevel(concurrency, outcomes, wallMs, measured.at(-1), floor));
    stop = sweepStop(measured, rules);
    if (stop) break;
  }
  const last = measured.at(-1) as ServeLevel;
  stop ??= { reason: "max-concurrency", detail: `concurrency ${last.concurrency} is the highest asked for` };
  const first = measured[0] as ServeLevel;
  const clean = measured.filter((level) => level.errors === 0);
  const knee = clean.reduce<ServeLevel | undefined>(
    (best, level) => (best === undefined || level.systemTokPerSec > best.systemTokPerSec ? level : best),
    undefined,
  );
  return {
    mode: "serve",
    endpoint: options.url,
    levels: measured,
    stop: { ...stop, concurrency: last.concurrency },
    kneeConcurrency: knee?.concurrency ?? 0,
    decodeTokPerSec: first.decodeTokPerSec.mean ?? 0,
    floorTokPerSec: floor,
    eligibleCapacity: eligibleCapacity(measured, floor),
    crossCheck: {
      source: warm.timings?.source ?? null,
      decodeDiffPct: round(diffPct(first.decodeTokPerSec.mean, first.backendDecodeTokPerSec.mean)),
      prefillDiffPct: round(diffPct(first.prefillTokPerSec.mean, first.backendPrefillTokPerSec.mean)),
    },
    errors: measured.reduce((sum, level) => sum + level.errors, 0),
    tokenCounts: estimated ? "estimate" : "usage",
  };
}
