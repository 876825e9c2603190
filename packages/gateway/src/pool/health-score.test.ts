import { describe, expect, it } from "vitest";
import { HealthWindow } from "./health-score.js";

const DAY = 86_400_000;
const t0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY); // a bucket boundary

describe("HealthWindow", () => {
  it("starts at the neutral prior and follows the success ratio", () => {
    const health = new HealthWindow();
    expect(health.score(t0)).toBe(0.5);
    for (let i = 0; i < 96; i++) health.record("success", t0);
    for (let i = 0; i < 4; i++) health.record("failure", t0);
    // (96 + 4·0.5) / (100 + 4)
    expect(health.score(t0)).toBeCloseTo(98 / 104, 12);
    expect(health.counts(t0)).toEqual({ successes: 96, failures: 4, neutral: 0 });
  });

  it("does not move on neutral outcomes (4xx, 429)", () => {
    const health = new HealthWindow();
    health.record("success", t0);
    const before = health.score(t0);
    health.record("neutral", t0);
    health.record("cooldown", t0);
    expect(health.score(t0)).toBe(before);
    expect(health.counts(t0).neutral).toBe(2);
  });

  it("forgets outcomes older than 14 days", () => {
    const health = new HealthWindow();
    for (let i = 0; i < 10; i++) health.record("failure", t0);
    health.record("success", t0 + 5 * DAY);
    expect(health.counts(t0 + 13 * DAY).failures).toBe(10);
    expect(health.counts(t0 + 14 * DAY).failures).toBe(0);
    expect(health.score(t0 + 14 * DAY)).toBeCloseTo((1 + 2) / (1 + 4), 12);
    expect(health.score(t0 + 19 * DAY)).toBe(0.5);
  });

  it("reuses a ring bucket for a new day", () => {
    const health = new HealthWindow();
    health.record("failure", t0);
    health.record("success", t0 + 14 * DAY); // same ring slot, 14 days later
    expect(health.counts(t0 + 14 * DAY)).toEqual({ successes: 1, failures: 0, neutral: 0 });
  });

  it("with a half-life, recent outcomes weigh more", () => {
    const health = new HealthWindow({ halfLifeMs: DAY, priorWeight: 1e-9 });
    health.record("failure", t0);
    health.record("success", t0 + DAY);
    // failure weighs 1/2, success 1 → 1 / 1.5
    expect(health.score(t0 + DAY)).toBeCloseTo(2 / 3, 6);
  });

  it("says until when a computed score stays valid", () => {
    const health = new HealthWindow({ bucketMs: 3_600_000 });
    expect(health.validUntil(t0 + 10)).toBe(t0 + 3_600_000);
  });
});
