/**
 * Time-based multipliers that protect the pool from newcomers and from flapping operators.
 *
 * - `rampFactor`: a new instance gets a fraction of its declared capacity at registration,
 *   growing linearly to all of it, so an unproven node cannot take a large share of traffic
 *   on day one. factor(t) = start + (1 − start) · clamp((t − registeredAt) / rampMs, 0, 1).
 * - `switchPenalty`: after an instance switches its model, its payout multiplier drops and
 *   recovers linearly to 1, so chasing bounties by hopping between models does not pay.
 *   multiplier(t) = start + (1 − start) · clamp((t − switchedAt) / recoveryMs, 0, 1).
 */
import { MODEL_SWITCH_PENALTY } from "@gbt/protocol";
import { isResolved, markResolved, requireNumber, stripUndefined } from "./options.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export interface RampUpOptions {
  /** Fraction of declared capacity at registration, in (0, 1] (default 0.25). */
  startFactor?: number;
  /** Time to reach 100% (default 7 days). */
  rampMs?: number;
}
export type ResolvedRampUpOptions = Readonly<Required<RampUpOptions>>;

export const defaultRampUpOptions: ResolvedRampUpOptions = markResolved({
  startFactor: 0.25,
  rampMs: 7 * DAY_MS,
});

export function resolveRampUpOptions(options: RampUpOptions = {}): ResolvedRampUpOptions {
  if (isResolved(options)) return options as ResolvedRampUpOptions;
  const resolved = { ...defaultRampUpOptions, ...stripUndefined(options) };
  requireNumber("rampUp.startFactor", resolved.startFactor, Number.MIN_VALUE, 1);
  requireNumber("rampUp.rampMs", resolved.rampMs, 0);
  return markResolved(resolved);
}

/** The share of declared capacity an instance registered at `registeredAt` may use at `now`. */
export function rampFactor(
  registeredAt: number,
  now: number,
  options: ResolvedRampUpOptions = defaultRampUpOptions,
): number {
  return linearRecovery(now - registeredAt, options.startFactor, options.rampMs);
}

export interface SwitchPenaltyOptions {
  /** Payout multiplier right after a model switch, in [0, 1] (default 0.5). */
  startMultiplier?: number;
  /** Time to recover to 1.0 (default 72 h). */
  recoveryMs?: number;
}
export type ResolvedSwitchPenaltyOptions = Readonly<Required<SwitchPenaltyOptions>>;

export const defaultSwitchPenaltyOptions: ResolvedSwitchPenaltyOptions = markResolved({
  startMultiplier: MODEL_SWITCH_PENALTY.startMultiplier,
  recoveryMs: MODEL_SWITCH_PENALTY.recoveryHours * HOUR_MS,
});

export function resolveSwitchPenaltyOptions(
  options: SwitchPenaltyOptions = {},
): ResolvedSwitchPenaltyOptions {
  if (isResolved(options)) return options as ResolvedSwitchPenaltyOptions;
  const resolved = { ...defaultSwitchPenaltyOptions, ...stripUndefined(options) };
  requireNumber("switchPenalty.startMultiplier", resolved.startMultiplier, 0, 1);
  requireNumber("switchPenalty.recoveryMs", resolved.recoveryMs, 0);
  return markResolved(resolved);
}

/**
 * The payout multiplier of an instance whose model last changed at `switchedAt` (null: never
 * switched, multiplier 1). Exported for the ledger, which multiplies the provider share by it.
 */
export function switchPenalty(
  switchedAt: number | null,
  now: number,
  options: ResolvedSwitchPenaltyOptions = defaultSwitchPenaltyOptions,
): number {
  if (switchedAt === null) return 1;
  return linearRecovery(now - switchedAt, options.startMultiplier, options.recoveryMs);
}

/** start at elapsed ≤ 0, 1 at elapsed ≥ durationMs, linear between. */
function linearRecovery(elapsedMs: number, start: number, durationMs: number): number {
  if (elapsedMs >= durationMs) return 1;
  if (elapsedMs <= 0) return start;
  return start + ((1 - start) * elapsedMs) / durationMs;
}
