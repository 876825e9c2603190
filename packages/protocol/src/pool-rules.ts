/**
 * Rules of the pool that both sides must state the same way: the gateway applies them to payouts,
 * and the agent quotes them before a node acts (a model switch shows what it will cost).
 */

/**
 * Anti-flapping: right after an instance changes the models it serves, its payout multiplier
 * drops to `startMultiplier` and recovers linearly to 1 over `recoveryHours`, so hopping between
 * models to chase bounties does not pay.
 */
export const MODEL_SWITCH_PENALTY = Object.freeze({ startMultiplier: 0.5, recoveryHours: 72 });

/** What a model switch costs a pooled node under {@link MODEL_SWITCH_PENALTY}. */
export interface ModelSwitchCost {
  /** The payout multiplier right after the switch. */
  payoutMultiplierAfterSwitch: number;
  /** Hours until the multiplier is back to 1. */
  recoveryHours: number;
  /**
   * Earnings lost over the recovery window, in hours of full-rate earnings at a steady load: the
   * area above the linear recovery line, (1 − start) × recoveryHours / 2.
   */
  lostEarningsHours: number;
}

export function modelSwitchCost(penalty = MODEL_SWITCH_PENALTY): ModelSwitchCost {
  return {
    payoutMultiplierAfterSwitch: penalty.startMultiplier,
    recoveryHours: penalty.recoveryHours,
    lostEarningsHours: ((1 - penalty.startMultiplier) * penalty.recoveryHours) / 2,
  };
}
