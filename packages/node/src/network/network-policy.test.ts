/**
 * The network policy on a fake clock and fake timers (no real waiting): refusals first (no owner,
 * bad schedule or zone), then the pooled limit inside and outside the schedule, share → slots,
 * the boundary timer calling onChange exactly at each boundary (across a DST change), the line
 * `gbt serve` prints, and modes local/managed giving a linked gateway the whole capacity.
 */
import { GbtError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import type { NetworkConfig } from "../config.js";
import { checkNetworkMode, createNetworkPolicy, type PolicyTimers, pooledSlots } from "./network-policy.js";

/** A clock and timers that move only when the test says so. */
function fakeTime(startIso: string) {
  let clock = Date.parse(startIso);
  let nextId = 1;
  const pending = new Map<number, { at: number; callback: () => void }>();
  const delays: number[] = [];
  const timers: PolicyTimers = {
    setTimeout(callback, ms) {
      const id = nextId++;
      delays.push(ms);
      pending.set(id, { at: clock + ms, callback });
      return id;
    },
    clearTimeout(handle) {
      pending.delete(handle as number);
    },
  };
  return {
    now: () => clock,
    timers,
    delays,
    pending,
    /** Moves the clock to `iso`, firing every timer due on the way at its own time. */
    advanceTo(iso: string) {
      const target = Date.parse(iso);
      for (;;) {
        const due = [...pending.entries()]
          .filter(([, t]) => t.at <= target)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        pending.delete(due[0]);
        clock = due[1].at;
        due[1].callback();
      }
      clock = target;
    },
  };
}

function thrown(fn: () => unknown): GbtError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GbtError) return error;
    throw error;
  }
  throw new Error("nothing was thrown");
}

const night: NetworkConfig = {
  schedule: "22:00-08:00",
  timezone: "Europe/Berlin",
  maxShare: 0.5,
  maxConcurrent: 2,
};

describe("checkNetworkMode", () => {
  it("refuses network mode without an owner, saying how to claim the node", () => {
    const error = thrown(() => checkNetworkMode({ mode: "network", claimed: false, config: night }));
    expect(error.code).toBe("CLAIM_REQUIRED");
    expect(error.message).toContain("needs an owner");
    expect(error.hint).toContain("gbt owner claim");
    expect(error.details).toMatchObject({ reason: "claim_required" });
    // The same refusal from the policy itself.
    expect(() =>
      createNetworkPolicy({ capacity: 4, config: night, mode: "network", claimed: false }),
    ).toThrow(/needs an owner/);
  });

  it("refuses a bad schedule or time zone as a config error", () => {
    expect(
      thrown(() => checkNetworkMode({ mode: "network", claimed: true, config: { schedule: "22:00-25:00" } }))
        .code,
    ).toBe("CONFIG_INVALID");
    const zone = thrown(() =>
      checkNetworkMode({ mode: "network", claimed: true, config: { timezone: "Europe/Atlantis" } }),
    );
    expect(zone.code).toBe("CONFIG_INVALID");
    expect(zone.message).toContain("Europe/Atlantis");
  });

  it("asks nothing of the other modes, even with a bad network section", () => {
    for (const mode of ["local", "managed"] as const) {
      expect(checkNetworkMode({ mode, claimed: false, config: { schedule: "nonsense" } })).toBeUndefined();
    }
    expect(checkNetworkMode({ mode: "network", claimed: true, config: undefined })).toMatchObject({
      schedule: { always: true },
    });
  });
});

describe("pooledSlots", () => {
  it("floors the share but keeps at least one slot, then caps at maxConcurrent", () => {
    expect(pooledSlots(4, undefined)).toBe(4);
    expect(pooledSlots(4, { maxShare: 0.5 })).toBe(2);
    expect(pooledSlots(4, { maxShare: 0.7 })).toBe(2);
    expect(pooledSlots(4, { maxShare: 0.01 })).toBe(1);
    expect(pooledSlots(1, { maxShare: 0.5 })).toBe(1);
    expect(pooledSlots(8, { maxShare: 1 })).toBe(8);
    expect(pooledSlots(8, { maxShare: 0.75, maxConcurrent: 3 })).toBe(3);
    expect(pooledSlots(8, { maxConcurrent: 200 })).toBe(8);
  });
});

describe("createNetworkPolicy", () => {
  it("admits no pooled traffic outside the schedule and its share inside it", () => {
    const time = fakeTime("2026-06-01T10:00:00Z"); // 12:00 in Berlin: closed
    const policy = createNetworkPolicy({
      capacity: 8,
      config: { ...night, maxShare: 0.75, maxConcurrent: undefined },
      mode: "network",
      claimed: true,
      now: time.now,
      timers: time.timers,
    });
    expect(policy.open()).toBe(false);
    expect(policy.pooledLimit()).toBe(0);
    expect(policy.offeredCapacity()).toBe(0);
    time.advanceTo("2026-06-01T20:00:00Z"); // 22:00 CEST
    expect(policy.open()).toBe(true);
    expect(policy.pooledLimit()).toBe(6);
    expect(policy.offeredCapacity()).toBe(6);
    policy.stop();
  });

  it("calls onChange exactly at each boundary, across spring forward, and never after stop", () => {
    const time = fakeTime("2026-03-28T12:00:00Z"); // 13:00 CET: closed
    const changes: Array<[string, boolean]> = [];
    const policy = createNetworkPolicy({
      capacity: 4,
      config: night,
      mode: "network",
      claimed: true,
      now: time.now,
      timers: time.timers,
      onChange: (open) => changes.push([new Date(time.now()).toISOString(), open]),
    });
    expect(changes).toEqual([]);
    time.advanceTo("2026-03-29T21:00:00Z");
    expect(changes).toEqual([
      ["2026-03-28T21:00:00.000Z", true], // 22:00 CET
      ["2026-03-29T06:00:00.000Z", false], // 08:00 CEST: the clock moved on at 02:00
      ["2026-03-29T20:00:00.000Z", true], // 22:00 CEST
    ]);
    expect(policy.pooledLimit()).toBe(2);
    policy.stop();
    expect(time.pending.size).toBe(0);
    time.advanceTo("2026-04-01T00:00:00Z");
    expect(changes).toHaveLength(3);
  });

  it("re-arms when a timer fires early and arms none when always open", () => {
    const time = fakeTime("2026-06-01T10:00:00Z");
    const changes: boolean[] = [];
    const early: PolicyTimers = {
      setTimeout: (callback, ms) => time.timers.setTimeout(callback, Math.max(1, Math.floor(ms / 2))),
      clearTimeout: time.timers.clearTimeout,
    };
    const policy = createNetworkPolicy({
      capacity: 4,
      config: night,
      mode: "network",
      claimed: true,
      now: time.now,
      timers: early,
      onChange: (open) => changes.push(open),
    });
    time.advanceTo("2026-06-01T19:59:30Z"); // the early timer fired and re-armed: still closed
    expect(changes).toEqual([]);
    time.advanceTo("2026-06-01T20:00:00Z");
    expect(changes).toEqual([true]);
    policy.stop();

    const always = fakeTime("2026-06-01T10:00:00Z");
    const open = createNetworkPolicy({
      capacity: 4,
      config: { maxConcurrent: 3 },
      mode: "network",
      claimed: true,
      now: always.now,
      timers: always.timers,
    });
    expect(always.pending.size).toBe(0);
    expect(open.pooledLimit()).toBe(3);
    expect(open.describe()).toBe("network mode: pooled traffic always, up to 4 of 4 slots, ≤ 3 at once");
  });

  it("describes itself in one line for gbt serve", () => {
    const time = fakeTime("2026-06-01T21:00:00Z"); // 23:00 CEST: open
    const policy = createNetworkPolicy({
      capacity: 4,
      config: night,
      mode: "network",
      claimed: true,
      now: time.now,
      timers: time.timers,
    });
    expect(policy.describe()).toBe(
      "network mode: pooled traffic 22:00–08:00 Europe/Berlin (open now, until 08:00), up to 2 of 4 slots, ≤ 2 at once",
    );
    time.advanceTo("2026-06-02T09:00:00Z");
    expect(policy.describe()).toBe(
      "network mode: pooled traffic 22:00–08:00 Europe/Berlin (closed now, opens 22:00), up to 2 of 4 slots, ≤ 2 at once",
    );
    policy.stop();
  });

  it("gives a linked gateway the whole capacity in modes local and managed, with no timer", () => {
    for (const mode of ["local", "managed"] as const) {
      const time = fakeTime("2026-06-01T10:00:00Z");
      const policy = createNetworkPolicy({
        capacity: 4,
        config: night,
        mode,
        claimed: false,
        now: time.now,
        timers: time.timers,
      });
      expect(policy.open()).toBe(true);
      expect(policy.pooledLimit()).toBe(4);
      expect(policy.offeredCapacity()).toBe(4);
      expect(time.pending.size).toBe(0);
      expect(policy.describe()).toBe(`${mode} mode: a linked gateway may use all 4 slots, at any time`);
      policy.stop();
    }
  });

  it("does not keep the process alive with its real timer", () => {
    const policy = createNetworkPolicy({
      capacity: 4,
      config: { schedule: "00:00-00:01,12:00-12:01", timezone: "UTC" },
      mode: "network",
      claimed: true,
    });
    const active = process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    policy.stop();
    // An unref'd timer is not reported as active.
    expect(process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length).toBe(active);
  });
});
