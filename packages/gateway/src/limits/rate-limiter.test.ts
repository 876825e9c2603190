import { HttpError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { duration, type LimitSource, type Limits, periodStart, RateLimiter } from "./rate-limiter.js";

const principal = { accountId: "acc", keyId: "key" };

function source(key: Limits, account: Limits = {}): LimitSource & { bump(next: Limits): void } {
  let version = 0;
  let keyLimits = key;
  return {
    forKey: () => keyLimits,
    forAccount: () => account,
    get version() {
      return version;
    },
    bump(next) {
      keyLimits = next;
      version += 1;
    },
  };
}

const refusal = (run: () => unknown): HttpError => {
  try {
    run();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("not refused");
};

describe("RateLimiter", () => {
  it("admits no more than the limit in any sliding minute", () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(source({ requestsPerMinute: 3 }), null, () => now);
    for (let i = 0; i < 3; i++) limiter.admit(principal, 1, 0).release();
    expect(refusal(() => limiter.admit(principal, 1, 0)).headers["retry-after"]).toBe("60");
    now += 59_999;
    expect(refusal(() => limiter.admit(principal, 1, 0)).wireCode).toBe("rate_limit_exceeded");
    now += 1;
    expect(limiter.admit(principal, 1, 0).headers).toContain("x-ratelimit-remaining-requests");
  });

  it("lets tokens leave the window a second at a time", () => {
    let now = 0;
    const limiter = new RateLimiter(source({ tokensPerMinute: 100 }), null, () => now);
    limiter.admit(principal, 60, 0);
    now = 30_000;
    limiter.admit(principal, 60, 0);
    now = 59_000;
    const refused = refusal(() => limiter.admit(principal, 1, 0));
    expect(refused.headers["x-ratelimit-reset-tokens"]).toBe("1s");
    now = 60_000; // the first 60 left
    const ticket = limiter.admit(principal, 1, 0);
    const at = ticket.headers.indexOf("x-ratelimit-remaining-tokens");
    expect(ticket.headers[at + 1]).toBe("39");
  });

  it("keeps in-flight requests counted across a change of limits, and releases each once", () => {
    const limits = source({ concurrentRequests: 1 });
    const limiter = new RateLimiter(limits, null, () => 0);
    const first = limiter.admit(principal, 1, 0);
    limits.bump({ concurrentRequests: 2 });
    const second = limiter.admit(principal, 1, 0);
    expect(refusal(() => limiter.admit(principal, 1, 0)).wireCode).toBe("rate_limit_exceeded");
    first.release();
    first.release();
    limiter.admit(principal, 1, 0);
    expect(refusal(() => limiter.admit(principal, 1, 0)).wireCode).toBe("rate_limit_exceeded");
    second.release();
  });

  it("checks a budget against spent + held + this request, and starts again with the next period", () => {
    let now = Date.UTC(2026, 11, 4, 23, 59, 0);
    let spent = 900;
    const limiter = new RateLimiter(
      source({}, { budgetMicro: 1000, budgetPeriod: "day" }),
      { spentSince: (_account, since) => (since === Date.UTC(2026, 11, 4) ? spent : 0), heldMicro: () => 50 },
      () => now,
    );
    limiter.admit(principal, 1, 50);
    const refused = refusal(() => limiter.admit(principal, 1, 51));
    expect(refused.wireCode).toBe("budget_exceeded");
    expect(refused.headers["retry-after"]).toBe("60");
    spent = 0;
    now = Date.UTC(2026, 11, 5, 0, 0, 0);
    limiter.admit(principal, 1, 900);
  });

  it("formats resets as OpenAI does and finds period starts in UTC", () => {
    expect([duration(250), duration(1000), duration(59_001), duration(360_000)]).toEqual([
      "250ms",
      "1s",
      "1m0s",
      "6m0s",
    ]);
    expect(periodStart(Date.UTC(2026, 1, 17, 8), "month")).toBe(Date.UTC(2026, 1, 1));
  });
});
