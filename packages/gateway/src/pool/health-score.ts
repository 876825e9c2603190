/**
 * The rolling health record of one instance: how its routed requests ended over the last
 * 14 days, in fixed time buckets (one per day by default), and the score the pool's routing uses
 * to break ties between instances with equal spare capacity.
 *
 * Formula. Let s_b, f_b be the successes and failures in bucket b, a_b its age in buckets
 * (0 for the current one), and w_b = 2^(−a_b · bucketMs / halfLifeMs) (w_b = 1 without decay).
 * With S = Σ w_b s_b and F = Σ w_b f_b over the buckets inside the window,
 *
 *   score = (S + priorWeight · priorScore) / (S + F + priorWeight)
 *
 * i.e. the success ratio shrunk toward a neutral prior: a new instance starts at priorScore
 * (0.5) and its own record outweighs the prior after a few requests. Neutral outcomes
 * (consumer 4xx, a node's 429 cooldown) are counted for the record but do not move the score.
 */
import type { CallOutcome } from "./circuit-breaker.js";
import { isResolved, markResolved, requireNumber, stripUndefined } from "./options.js";

const DAY_MS = 86_400_000;

export interface HealthWindowOptions {
  /** Length of the rolling window (default 14 days). */
  windowMs?: number;
  /** Bucket width; the window holds ceil(windowMs / bucketMs) buckets (default 1 day). */
  bucketMs?: number;
  /** Score of an instance without history (default 0.5). */
  priorScore?: number;
  /** Weight of the prior, in pseudo-requests (default 4). */
  priorWeight?: number;
  /** Half-life of the exponential decay of older buckets; null for none (default null). */
  halfLifeMs?: number | null;
}
export type ResolvedHealthWindowOptions = Readonly<Required<HealthWindowOptions>>;

export const defaultHealthWindowOptions: ResolvedHealthWindowOptions = markResolved({
  windowMs: 14 * DAY_MS,
  bucketMs: DAY_MS,
  priorScore: 0.5,
  priorWeight: 4,
  halfLifeMs: null,
});

export function resolveHealthWindowOptions(options: HealthWindowOptions = {}): ResolvedHealthWindowOptions {
  if (isResolved(options)) return options as ResolvedHealthWindowOptions;
  const resolved = { ...defaultHealthWindowOptions, ...stripUndefined(options) };
  requireNumber("health.bucketMs", resolved.bucketMs, 1);
  requireNumber("health.windowMs", resolved.windowMs, resolved.bucketMs);
  requireNumber("health.priorScore", resolved.priorScore, 0, 1);
  requireNumber("health.priorWeight", resolved.priorWeight, Number.MIN_VALUE);
  if (resolved.halfLifeMs !== null) requireNumber("health.halfLifeMs", resolved.halfLifeMs, 1);
  return markResolved(resolved);
}

export interface HealthCounts {
  successes: number;
  failures: number;
  neutral: number;
}

export class HealthWindow {
  readonly options: ResolvedHealthWindowOptions;
  readonly #size: number;
  /** Absolute bucket number (floor(t / bucketMs)) held by each ring slot; −1 when empty. */
  readonly #bucketOf: Float64Array;
  readonly #successes: Float64Array;
  readonly #failures: Float64Array;
  readonly #neutral: Float64Array;

  constructor(options: HealthWindowOptions = {}) {
    this.options = resolveHealthWindowOptions(options);
    this.#size = Math.ceil(this.options.windowMs / this.options.bucketMs);
    this.#bucketOf = new Float64Array(this.#size).fill(-1);
    this.#successes = new Float64Array(this.#size);
    this.#failures = new Float64Array(this.#size);
    this.#neutral = new Float64Array(this.#size);
  }

  /** Counts one request outcome at time `at`; a cooldown counts as neutral. */
  record(outcome: CallOutcome, at: number): void {
    const bucket = Math.floor(at / this.options.bucketMs);
    const slot = bucket % this.#size;
    const held = this.#bucketOf[slot] ?? -1;
    if (held > bucket) return; // older than the window this slot now holds: out of the window
    if (held !== bucket) {
      this.#bucketOf[slot] = bucket;
      this.#successes[slot] = 0;
      this.#failures[slot] = 0;
      this.#neutral[slot] = 0;
    }
    const counts =
      outcome === "success" ? this.#successes : outcome === "failure" ? this.#failures : this.#neutral;
    counts[slot] = (counts[slot] ?? 0) + 1;
  }

  /** The health score at time `at` (see the module header for the formula). */
  score(at: number): number {
    const { priorScore, priorWeight, halfLifeMs, bucketMs } = this.options;
    const current = Math.floor(at / bucketMs);
    let s = 0;
    let f = 0;
    for (let slot = 0; slot < this.#size; slot++) {
      const age = current - (this.#bucketOf[slot] ?? -1);
      if (age < 0 || age >= this.#size) continue;
      const weight = halfLifeMs === null ? 1 : 2 ** ((-age * bucketMs) / halfLifeMs);
      s += weight * (this.#successes[slot] ?? 0);
      f += weight * (this.#failures[slot] ?? 0);
    }
    return (s + priorWeight * priorScore) / (s + f + priorWeight);
  }

  /** Raw counts inside the window at time `at` (no decay). */
  counts(at: number): HealthCounts {
    const current = Math.floor(at / this.options.bucketMs);
    const out: HealthCounts = { successes: 0, failures: 0, neutral: 0 };
    for (let slot = 0; slot < this.#size; slot++) {
      const age = current - (this.#bucketOf[slot] ?? -1);
      if (age < 0 || age >= this.#size) continue;
      out.successes += this.#successes[slot] ?? 0;
      out.failures += this.#failures[slot] ?? 0;
      out.neutral += this.#neutral[slot] ?? 0;
    }
    return out;
  }

  /** The score computed at `at` stays valid until this time unless an outcome is recorded. */
  validUntil(at: number): number {
    return (Math.floor(at / this.options.bucketMs) + 1) * this.options.bucketMs;
  }
}
