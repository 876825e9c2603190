/**
 * The per-instance circuit breaker of the pool's routing. A node that keeps failing is parked for a
 * while so that consumers stop paying for its errors; it earns its way back with one probe.
 * Time comes from an injected clock so the rules can be tested exactly, without sleeping.
 *
 *   closed ──(failureThreshold failures within failureWindowMs)──▶ open
 *   open ──(openMs elapsed)──▶ half-open: exactly one probe request is admitted
 *   half-open ──probe succeeds──▶ closed (failure history cleared)
 *   half-open ──probe fails──▶ open for another openMs
 *
 * Consumer errors (4xx) are neutral. A node's 429 is a cooldown: the instance is skipped until
 * its Retry-After (or `defaultCooldownMs`) has passed, without counting as a failure.
 */
import { invalidRoutingOption, isResolved, markResolved, requireNumber, stripUndefined } from "./options.js";

/** How a routed request ended, from the instance's point of view. */
export type CallOutcome = "success" | "failure" | "neutral" | "cooldown";

/** The breaker's circuit state (a cooldown is reported separately: it is not a circuit state). */
export type BreakerState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
  /** Failures within `failureWindowMs` that park the instance (default 3). */
  failureThreshold?: number;
  /** The sliding window the failures must fall in, inclusive (default 60 s). */
  failureWindowMs?: number;
  /** How long a parked instance stays out before its probe (default 15 s). */
  openMs?: number;
  /**
   * A probe that has not reported back after this long is presumed lost and another probe is
   * admitted (default 120 s), so a leaked lease cannot park an instance forever.
   */
  probeTimeoutMs?: number;
  /** The cooldown after a 429 without a usable Retry-After (default 1 s). */
  defaultCooldownMs?: number;
  /** The longest cooldown a node may ask for with Retry-After (default 60 s). */
  maxCooldownMs?: number;
}

export type ResolvedBreakerOptions = Readonly<Required<CircuitBreakerOptions>>;

export const defaultBreakerOptions: ResolvedBreakerOptions = markResolved({
  failureThreshold: 3,
  failureWindowMs: 60_000,
  openMs: 15_000,
  probeTimeoutMs: 120_000,
  defaultCooldownMs: 1_000,
  maxCooldownMs: 60_000,
});

/** Fills in defaults and refuses nonsense (a threshold below 1, negative durations). */
export function resolveBreakerOptions(options: CircuitBreakerOptions = {}): ResolvedBreakerOptions {
  if (isResolved(options)) return options as ResolvedBreakerOptions;
  const resolved = { ...defaultBreakerOptions, ...stripUndefined(options) };
  if (!Number.isInteger(resolved.failureThreshold) || resolved.failureThreshold < 1) {
    throw invalidRoutingOption("failureThreshold", resolved.failureThreshold, "an integer ≥ 1");
  }
  requireNumber("failureWindowMs", resolved.failureWindowMs, 0);
  requireNumber("openMs", resolved.openMs, 0);
  requireNumber("probeTimeoutMs", resolved.probeTimeoutMs, 0);
  requireNumber("defaultCooldownMs", resolved.defaultCooldownMs, 0);
  requireNumber("maxCooldownMs", resolved.maxCooldownMs, 0);
  return markResolved(resolved);
}

/** What `acquire` hands out: `REFUSED`, `ADMITTED` (an ordinary request), or a positive probe id. */
export type Admission = number;
export const REFUSED: Admission = -1;
export const ADMITTED: Admission = 0;

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;

export class CircuitBreaker {
  readonly options: ResolvedBreakerOptions;
  readonly #now: () => number;
  /** Ring of the most recent failure times while closed; only the last `failureThreshold` matter. */
  readonly #failureTimes: Float64Array;
  #failureCount = 0;
  #failureNext = 0;
  #state = CLOSED;
  #openUntil = 0;
  #cooldownUntil = 0;
  #probeId = 0;
  #probeStartedAt = 0;
  #probeSeq = 0;

  constructor(options: CircuitBreakerOptions = {}, now: () => number = Date.now) {
    this.options = resolveBreakerOptions(options);
    this.#now = now;
    this.#failureTimes = new Float64Array(this.options.failureThreshold);
  }

  /** The circuit state now (open turns half-open by itself once `openMs` has passed). */
  get state(): BreakerState {
    this.#advance(this.#now());
    return this.#state === CLOSED ? "closed" : this.#state === OPEN ? "open" : "half-open";
  }

  /** Whether the probe of a half-open breaker is out (callers are refused meanwhile). */
  get probing(): boolean {
    return this.#state === HALF_OPEN && this.#probeId !== 0 && this.#probeLive(this.#now());
  }

  /** The end of the current 429 cooldown, or null when there is none. */
  get cooldownUntil(): number | null {
    return this.#cooldownUntil > this.#now() ? this.#cooldownUntil : null;
  }

  /**
   * The earliest time at which `acquire` may admit again: at or before now means it admits now.
   * The pool caches this number so that its pick does not have to call into every breaker.
   */
  blockedUntil(): number {
    const now = this.#now();
    this.#advance(now);
    let until = this.#cooldownUntil;
    if (this.#state === OPEN) until = Math.max(until, this.#openUntil);
    else if (this.#state === HALF_OPEN && this.#probeId !== 0) {
      until = Math.max(until, this.#probeStartedAt + this.options.probeTimeoutMs);
    }
    return until;
  }

  /** Whether a request would be admitted now (no side effect). */
  canAdmit(): boolean {
    return this.blockedUntil() <= this.#now();
  }

  /**
   * Admits a request or refuses it. In half-open state the one admitted request is the probe:
   * its admission is a positive id that must be handed back to `record`.
   */
  acquire(): Admission {
    const now = this.#now();
    this.#advance(now);
    if (now < this.#cooldownUntil) return REFUSED;
    if (this.#state === CLOSED) return ADMITTED;
    if (this.#state === OPEN) return REFUSED;
    if (this.#probeId !== 0 && this.#probeLive(now)) return REFUSED;
    this.#probeSeq += 1;
    this.#probeId = this.#probeSeq;
    this.#probeStartedAt = now;
    return this.#probeId;
  }

  /**
   * Records how an admitted request ended. Only the current probe moves a half-open breaker;
   * results of requests admitted before the instance was parked do not close or extend it.
   */
  record(outcome: CallOutcome, admission: Admission = ADMITTED, retryAfterMs?: number): void {
    const now = this.#now();
    this.#advance(now);
    if (outcome === "cooldown") {
      const asked =
        retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0
          ? retryAfterMs
          : this.options.defaultCooldownMs;
      this.#cooldownUntil = Math.max(this.#cooldownUntil, now + Math.min(asked, this.options.maxCooldownMs));
    }
    const isProbe = admission > 0 && admission === this.#probeId && this.#state === HALF_OPEN;
    if (isProbe) {
      this.#probeId = 0;
      if (outcome === "success") this.#close();
      else if (outcome === "failure") this.#open(now);
      // neutral / cooldown: the probe proved nothing; the next request becomes the probe.
      return;
    }
    if (outcome === "failure" && this.#state === CLOSED) this.#recordFailure(now);
  }

  #recordFailure(now: number): void {
    const threshold = this.options.failureThreshold;
    this.#failureTimes[this.#failureNext] = now;
    this.#failureNext = (this.#failureNext + 1) % threshold;
    if (this.#failureCount < threshold) this.#failureCount += 1;
    if (this.#failureCount < threshold) return;
    // The ring is full: its oldest entry is at #failureNext, the threshold-th most recent failure.
    const oldest = this.#failureTimes[this.#failureNext] ?? now;
    if (now - oldest <= this.options.failureWindowMs) this.#open(now);
  }

  #open(now: number): void {
    this.#state = OPEN;
    this.#openUntil = now + this.options.openMs;
    this.#probeId = 0;
    this.#failureCount = 0;
    this.#failureNext = 0;
  }

  #close(): void {
    this.#state = CLOSED;
    this.#probeId = 0;
    this.#failureCount = 0;
    this.#failureNext = 0;
  }

  #advance(now: number): void {
    if (this.#state === OPEN && now >= this.#openUntil) {
      this.#state = HALF_OPEN;
      this.#probeId = 0;
    }
  }

  #probeLive(now: number): boolean {
    return now < this.#probeStartedAt + this.options.probeTimeoutMs;
  }
}
