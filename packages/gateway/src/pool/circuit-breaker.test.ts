import { describe, expect, it } from "vitest";
import { ADMITTED, CircuitBreaker, REFUSED } from "./circuit-breaker.js";

function clock(start = 1_700_000_000_000) {
  const c = {
    t: start,
    now: () => c.t,
    advance: (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

function failTimes(breaker: CircuitBreaker, c: ReturnType<typeof clock>, gapsMs: number[]): void {
  for (const gap of gapsMs) {
    c.advance(gap);
    breaker.record("failure", breaker.acquire());
  }
}

describe("CircuitBreaker", () => {
  it("parks after 3 failures within 60 s", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 20_000]);
    expect(breaker.state).toBe("closed");
    expect(breaker.acquire()).toBe(ADMITTED);
    failTimes(breaker, c, [40_000]); // third failure exactly 60 s after the first: within
    expect(breaker.state).toBe("open");
    expect(breaker.acquire()).toBe(REFUSED);
    expect(breaker.canAdmit()).toBe(false);
  });

  it("does not park on 3 failures spread over more than 60 s", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 30_000, 30_001]);
    expect(breaker.state).toBe("closed");
    // ...but the window slides: two more close together park it.
    failTimes(breaker, c, [1_000]);
    expect(breaker.state).toBe("open");
  });

  it("after 15 s admits exactly one probe; concurrent callers are refused while it is out", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 1, 1]);
    c.advance(14_999);
    expect(breaker.state).toBe("open");
    expect(breaker.acquire()).toBe(REFUSED);
    c.advance(1);
    expect(breaker.state).toBe("half-open");
    const probe = breaker.acquire();
    expect(probe).toBeGreaterThan(0);
    expect(breaker.probing).toBe(true);
    expect(breaker.acquire()).toBe(REFUSED);
    expect(breaker.acquire()).toBe(REFUSED);
    c.advance(5_000);
    expect(breaker.acquire()).toBe(REFUSED);
  });

  it("a probe success lets the instance fully back in", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 1, 1]);
    c.advance(15_000);
    breaker.record("success", breaker.acquire());
    expect(breaker.state).toBe("closed");
    expect(breaker.acquire()).toBe(ADMITTED);
    expect(breaker.acquire()).toBe(ADMITTED);
    // The failure history was cleared: two new failures do not park it.
    failTimes(breaker, c, [0, 1]);
    expect(breaker.state).toBe("closed");
  });

  it("a probe failure parks it for another 15 s", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 1, 1]);
    c.advance(15_000);
    breaker.record("failure", breaker.acquire());
    expect(breaker.state).toBe("open");
    c.advance(14_999);
    expect(breaker.acquire()).toBe(REFUSED);
    c.advance(1);
    expect(breaker.acquire()).toBeGreaterThan(0);
  });

  it("a neutral probe (consumer 4xx) frees the probe slot without deciding", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    failTimes(breaker, c, [0, 1, 1]);
    c.advance(15_000);
    breaker.record("neutral", breaker.acquire());
    expect(breaker.state).toBe("half-open");
    const next = breaker.acquire();
    expect(next).toBeGreaterThan(0);
    breaker.record("success", next);
    expect(breaker.state).toBe("closed");
  });

  it("late results of requests admitted before parking neither close nor extend it", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    const early = [breaker.acquire(), breaker.acquire()];
    failTimes(breaker, c, [0, 1, 1]);
    breaker.record("success", early[0]);
    expect(breaker.state).toBe("open");
    c.advance(10_000);
    breaker.record("failure", early[1]);
    c.advance(5_000);
    expect(breaker.state).toBe("half-open");
  });

  it("consumer 4xx is neutral: any number of them never parks", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    for (let i = 0; i < 50; i++) breaker.record("neutral", breaker.acquire());
    expect(breaker.state).toBe("closed");
    expect(breaker.canAdmit()).toBe(true);
  });

  it("a 429 is a cooldown for Retry-After (or 1 s), not a failure", () => {
    const c = clock();
    const breaker = new CircuitBreaker({}, c.now);
    for (let i = 0; i < 5; i++) breaker.record("cooldown", breaker.acquire());
    expect(breaker.state).toBe("closed");
    expect(breaker.acquire()).toBe(REFUSED);
    expect(breaker.cooldownUntil).toBe(c.t + 1_000);
    c.advance(1_000);
    expect(breaker.acquire()).toBe(ADMITTED);
    breaker.record("cooldown", ADMITTED, 5_000);
    c.advance(4_999);
    expect(breaker.canAdmit()).toBe(false);
    c.advance(1);
    expect(breaker.canAdmit()).toBe(true);
    // Two real failures after all those 429s still do not park it.
    failTimes(breaker, c, [0, 1]);
    expect(breaker.state).toBe("closed");
  });

  it("caps an excessive Retry-After", () => {
    const c = clock();
    const breaker = new CircuitBreaker({ maxCooldownMs: 10_000 }, c.now);
    breaker.record("cooldown", ADMITTED, 3_600_000);
    expect(breaker.blockedUntil()).toBe(c.t + 10_000);
  });

  it("a lost probe does not park the instance forever", () => {
    const c = clock();
    const breaker = new CircuitBreaker({ probeTimeoutMs: 30_000 }, c.now);
    failTimes(breaker, c, [0, 1, 1]);
    c.advance(15_000);
    const lost = breaker.acquire();
    expect(lost).toBeGreaterThan(0);
    c.advance(29_999);
    expect(breaker.acquire()).toBe(REFUSED);
    c.advance(1);
    const second = breaker.acquire();
    expect(second).toBeGreaterThan(lost);
    breaker.record("success", lost); // the stale probe reporting late decides nothing
    expect(breaker.state).toBe("half-open");
    breaker.record("success", second);
    expect(breaker.state).toBe("closed");
  });

  it("takes its thresholds from options and refuses nonsense", () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, failureWindowMs: 1_000, openMs: 500 }, c.now);
    failTimes(breaker, c, [0, 1_000]);
    expect(breaker.state).toBe("open");
    c.advance(500);
    expect(breaker.state).toBe("half-open");
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
    expect(() => new CircuitBreaker({ openMs: -1 })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }),
    );
  });
});
