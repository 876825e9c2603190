import { describe, expect, it } from "vitest";
import { rampFactor, resolveRampUpOptions, resolveSwitchPenaltyOptions, switchPenalty } from "./ramp-up.js";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const t0 = 1_700_000_000_000;

describe("rampFactor", () => {
  it("is 25% at registration, 62.5% at 3.5 days, 100% from 7 days on", () => {
    expect(rampFactor(t0, t0)).toBe(0.25);
    expect(rampFactor(t0, t0 + 3.5 * DAY)).toBeCloseTo(0.625, 12);
    expect(rampFactor(t0, t0 + 7 * DAY)).toBe(1);
    expect(rampFactor(t0, t0 + 30 * DAY)).toBe(1);
    expect(rampFactor(t0, t0 - DAY)).toBe(0.25); // a clock behind the registration
  });

  it("is configurable", () => {
    const options = resolveRampUpOptions({ startFactor: 0.5, rampMs: 2 * DAY });
    expect(rampFactor(t0, t0 + DAY, options)).toBeCloseTo(0.75, 12);
    expect(rampFactor(t0, t0 + 2 * DAY, options)).toBe(1);
    expect(() => resolveRampUpOptions({ startFactor: 0 })).toThrow(/startFactor/);
  });
});

describe("switchPenalty", () => {
  it("is 1 for an instance that never switched", () => {
    expect(switchPenalty(null, t0)).toBe(1);
  });

  it("drops to 0.5 at a switch and recovers linearly to 1 over 72 h", () => {
    expect(switchPenalty(t0, t0)).toBe(0.5);
    expect(switchPenalty(t0, t0 + 36 * HOUR)).toBeCloseTo(0.75, 12);
    expect(switchPenalty(t0, t0 + 72 * HOUR)).toBe(1);
    let previous = 0;
    for (let h = 0; h <= 80; h += 4) {
      const value = switchPenalty(t0, t0 + h * HOUR);
      expect(value).toBeGreaterThanOrEqual(previous);
      previous = value;
    }
  });

  it("is configurable", () => {
    const options = resolveSwitchPenaltyOptions({ startMultiplier: 0.2, recoveryMs: 10 * HOUR });
    expect(switchPenalty(t0, t0 + 5 * HOUR, options)).toBeCloseTo(0.6, 12);
    expect(() => resolveSwitchPenaltyOptions({ startMultiplier: 1.5 })).toThrow(/startMultiplier/);
  });
});
