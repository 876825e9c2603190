import { isGbtError, seededRandom } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { InstancePool, type PoolOptions } from "./instance-pool.js";
import type { Lease, LeaseOptions } from "./lease.js";
import type { InstanceRegistration } from "./pool-instance.js";

const DAY = 86_400_000;
const MODEL = "test-model";

function setup(options: PoolOptions = {}, seed = 1) {
  const clock = { t: 1_700_000_000_000 };
  const now = () => clock.t;
  // Panic mode off unless a test turns it on: these tests watch the breaker itself.
  const pool = new InstancePool({ random: seededRandom(seed), panicMode: false, ...options }, now);
  /** A lease, or the no-candidate answer's error thrown. */
  const select = (model: string, options: LeaseOptions = {}): Lease => {
    const picked = pool.lease(model, options);
    if (picked.lease === null) throw picked.error;
    return picked.lease;
  };
  const add = (id: string, extra: Partial<InstanceRegistration> = {}) =>
    pool.register({
      id,
      nodeAddress: `0x${id}`,
      url: `http://127.0.0.1/${id}`,
      models: [MODEL],
      declaredCapacity: 4,
      registeredAt: clock.t - 30 * DAY, // fully ramped unless a test says otherwise
      benchmarkTokPerSec: 50,
      ...extra,
    });
  const advance = (ms: number) => {
    clock.t += ms;
  };
  const pick = (exclude?: string[]) => select(MODEL, exclude === undefined ? {} : { exclude });
  return { clock, pool, select, add, advance, pick };
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("InstancePool.lease", () => {
  it("picks the instance with the most spare capacity", () => {
    const { add, pick } = setup();
    add("a", { declaredCapacity: 2 });
    add("b", { declaredCapacity: 8 });
    expect(pick().instance.id).toBe("b");
  });

  it("is least-loaded: in-flight requests lower spare, releases raise it again", () => {
    const { add, pick } = setup();
    add("a");
    add("b");
    const first = pick();
    const second = pick();
    expect(second.instance.id).not.toBe(first.instance.id);
    const third = pick(); // both at 3 spare: either
    third.release("success");
    second.release("success");
    // second's instance now has 4 spare, the other 3
    expect(pick().instance.id).toBe(second.instance.id);
  });

  it("breaks spare ties by the 14-day health score, then at random", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { add, pick } = setup({}, seed);
      add("healthy");
      add("flaky");
      // Two failures (not three: it must stay admitted) and one success on each, interleaved.
      for (let i = 0; i < 2; i++) {
        const a = pick();
        const b = pick();
        for (const lease of [a, b]) lease.release(lease.instance.id === "flaky" ? "failure" : "success");
      }
      expect(pick().instance.id).toBe("healthy");
    }
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const { add, pick } = setup({}, seed);
      add("a");
      add("b");
      add("c");
      firsts.add(pick().instance.id);
    }
    expect(firsts).toEqual(new Set(["a", "b", "c"]));
  });

  it("ramps new instances: 25% of declared capacity at registration", () => {
    const { add, pick, clock, pool } = setup();
    add("old", { declaredCapacity: 4 });
    add("new", { declaredCapacity: 8, registeredAt: clock.t }); // 8 × 0.25 = 2 spare
    const counts = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const id = pick().instance.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts).toEqual(
      new Map([
        ["old", 4],
        ["new", 2],
      ]),
    );
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    expect(pool.rampFactor(pool.get("new") as never)).toBe(0.25);
  });

  it("never picks an instance with no spare capacity", () => {
    const { add, pick } = setup();
    add("a", { declaredCapacity: 2 });
    const leases = [pick(), pick()];
    const error = errorOf(() => pick());
    expect(isGbtError(error, "BUSY")).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ full: 1 });
    leases[0]?.release("success");
    expect(pick().instance.id).toBe("a");
  });

  it("a concurrent burst over 3 equal instances spreads within ±1 of even", () => {
    for (const burst of [9, 20, 29]) {
      const { add, pick } = setup({}, burst);
      for (const id of ["a", "b", "c"]) add(id, { declaredCapacity: 10 });
      const counts = new Map<string, number>();
      for (let i = 0; i < burst; i++) {
        const id = pick().instance.id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      const values = [...counts.values()];
      expect(values).toHaveLength(3);
      expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    }
  });

  it("excludes the instances a retry already tried", () => {
    const { add, pick } = setup();
    add("a", { declaredCapacity: 8 });
    add("b", { declaredCapacity: 4 });
    add("c", { declaredCapacity: 2 });
    expect(pick(["a"]).instance.id).toBe("b");
    expect(pick(["a", "b"]).instance.id).toBe("c");
    const error = errorOf(() => pick(["a", "b", "c"]));
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ excluded: 3 });
    // The excluded ones are still there for the next request.
    expect(pick().instance.id).toBe("a");
  });

  it("an instance is stale after 3 missed heartbeats (10 s interval), back with the next one", () => {
    const { add, pick, advance, pool } = setup();
    add("a");
    advance(30_000);
    expect(pick().instance.id).toBe("a");
    advance(1);
    expect(pool.isStale(pool.get("a") as never)).toBe(true);
    const error = errorOf(() => pick());
    expect(isGbtError(error, "BUSY")).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ stale: 1 });
    pool.heartbeat("a");
    expect(pick().instance.id).toBe("a");
    expect(pool.activeModels()).toEqual([MODEL]);
  });

  it("heartbeats keep an instance active; the interval and count are configurable", () => {
    const { add, pick, advance, pool } = setup({ heartbeatIntervalMs: 1_000, missedHeartbeats: 2 });
    add("a");
    for (let i = 0; i < 10; i++) {
      advance(1_900);
      pool.heartbeat("a");
    }
    expect(pick().instance.id).toBe("a");
    advance(2_001);
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
  });

  it("applies the 5 tok/s floor: signed benchmark first, then observed throughput", () => {
    const { add, pick, pool } = setup();
    add("slow", { benchmarkTokPerSec: 4.9, declaredCapacity: 100 });
    add("unknown", { benchmarkTokPerSec: null, declaredCapacity: 2 });
    expect(pick().instance.id).toBe("unknown");
    const lease = pick();
    expect(lease.instance.id).toBe("unknown");
    // It turns out to decode at 2 tok/s: the floor now excludes it too.
    lease.release("success", { outputTokens: 100, generationMs: 50_000 });
    expect(pool.get("unknown")?.observedTokPerSec).toBe(2);
    const error = errorOf(() => pick());
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ belowFloor: 2 });
    // Re-benchmarked faster: admitted again.
    add("slow", { benchmarkTokPerSec: 30, declaredCapacity: 100 });
    expect(pick().instance.id).toBe("slow");
  });

  it("routes around a parked instance and lets exactly one probe through after 15 s", () => {
    const { add, pick, advance } = setup();
    add("bad", { declaredCapacity: 8 });
    add("good", { declaredCapacity: 2 });
    for (let i = 0; i < 3; i++) {
      const lease = pick();
      expect(lease.instance.id).toBe("bad");
      lease.release("failure");
    }
    const first = pick();
    const second = pick();
    expect([first.instance.id, second.instance.id]).toEqual(["good", "good"]);
    const error = errorOf(() => pick());
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ parked: 1, full: 1 });
    advance(15_000);
    const probe = pick();
    expect(probe.instance.id).toBe("bad");
    expect(probe.probe).toBe(true);
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" })); // probe out, good full
    probe.release("success");
    const after = [pick(), pick(), pick()];
    expect(after.map((l) => l.instance.id)).toEqual(["bad", "bad", "bad"]);
    expect(after.some((l) => l.probe)).toBe(false);
  });

  it("panic mode: with every instance parked, the least loaded parked one still takes requests, up to its capacity, without closing its breaker", () => {
    const { add, pick, pool } = setup({ panicMode: true });
    add("a");
    add("b");
    for (const id of ["a", "b"])
      for (let i = 0; i < 3; i++) pick(id === "a" ? ["b"] : ["a"]).release("failure");
    expect(pool.live().map((v) => v.breaker)).toEqual(["open", "open"]);
    const leases = Array.from({ length: 8 }, () => pick());
    expect(leases.every((lease) => lease.panic)).toBe(true);
    // Spread by load, and never beyond the declared capacity (4 each).
    expect(pool.live().map((v) => v.inFlight)).toEqual([4, 4]);
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    expect(pool.panicLeases).toBe(8);
    for (const lease of leases) lease.release("success");
    // Successes in panic mode prove nothing: the breakers stay open until their probes.
    expect(pool.live().map((v) => v.breaker)).toEqual(["open", "open"]);
  });

  it("panic mode does not route to parked instances while another one is merely full", () => {
    const { add, pick, pool } = setup({ panicMode: true });
    add("parked");
    add("full", { declaredCapacity: 1 });
    for (let i = 0; i < 3; i++) pick(["full"]).release("failure");
    const held = pick();
    expect(held.instance.id).toBe("full");
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    expect(pool.panicLeases).toBe(0);
    held.release("success");
  });

  it("a failed probe parks it again for 15 s", () => {
    const { add, pick, advance } = setup();
    add("bad");
    for (let i = 0; i < 3; i++) pick().release("failure");
    advance(15_000);
    pick().release("failure");
    advance(14_999);
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    advance(1);
    expect(pick().probe).toBe(true);
  });

  it("consumer 4xx is neutral and a node's 429 is a cooldown, not a failure", () => {
    const { add, pick, advance, pool } = setup();
    add("a");
    for (let i = 0; i < 10; i++) pick().release("neutral");
    pick().release("cooldown");
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    advance(1_000);
    pick().release("cooldown", { retryAfterMs: 3_000 });
    advance(2_999);
    expect(() => pick()).toThrow(expect.objectContaining({ code: "BUSY" }));
    advance(1);
    const view = pool.live()[0];
    expect(view).toMatchObject({ breaker: "closed", eligible: true, health: { failures: 0, neutral: 12 } });
    expect(pick().instance.id).toBe("a");
  });

  it("says MODEL_NOT_FOUND when nothing serves the model", () => {
    const { add, select } = setup();
    add("a");
    expect(() => select("other")).toThrow(expect.objectContaining({ code: "MODEL_NOT_FOUND" }));
  });

  it("a lease releases once; a removed instance's lease still releases", () => {
    const { add, pick, pool } = setup();
    const a = add("a");
    const lease = pick();
    expect(a.inFlight).toBe(1);
    expect(lease.release("success")).toBe(true);
    expect(lease.release("success")).toBe(false);
    expect(a.inFlight).toBe(0);
    const held = pick();
    pool.remove("a");
    expect(held.release("failure")).toBe(true);
    expect(a.inFlight).toBe(0);
    expect(pool.get("a")).toBeUndefined();
  });

  it("a model switch re-indexes the instance and starts its payout penalty", () => {
    const { add, select, pool, advance } = setup();
    add("a");
    pool.heartbeat("a", { models: ["other"] });
    expect(() => select(MODEL)).toThrow(expect.objectContaining({ code: "MODEL_NOT_FOUND" }));
    expect(select("other").instance.id).toBe("a");
    expect(pool.live()[0]?.switchPenalty).toBe(0.5);
    advance(36 * 3_600_000);
    pool.heartbeat("a");
    expect(pool.live()[0]?.switchPenalty).toBeCloseTo(0.75, 12);
  });

  it("refuses an unknown heartbeat and a nonsense registration", () => {
    const { add, pool } = setup();
    expect(() => pool.heartbeat("ghost")).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    expect(() => add("bad", { declaredCapacity: 0 })).toThrow(/declaredCapacity/);
    expect(() => add("bad", { models: [""] })).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
  });
});

describe("InstancePool.live", () => {
  it("shows each instance's state, load, breaker, ramp and health", () => {
    const { add, pick, pool, clock, advance } = setup();
    add("b", { registeredAt: clock.t, declaredCapacity: 8 });
    add("a");
    const lease = pick();
    expect(lease.instance.id).toBe("a");
    advance(31_000);
    const [a, b] = pool.live();
    expect(a).toMatchObject({
      id: "a",
      status: "stale",
      breaker: "closed",
      inFlight: 1,
      capacity: 4,
      spare: 3,
      rampFactor: 1,
      switchPenalty: 1,
      healthScore: 0.5,
      eligible: false,
      tokPerSec: { benchmark: 50, observed: null },
    });
    expect(b?.id).toBe("b");
    const ramp = 0.25 + (0.75 * 31_000) / (7 * DAY);
    expect(b?.rampFactor).toBeCloseTo(ramp, 12);
    expect(b?.capacity).toBeCloseTo(8 * ramp, 12);
    expect(b?.spare).toBeCloseTo(8 * ramp, 12);
  });
});

describe("InstancePool property: random lease/release sequences", () => {
  for (const variant of [
    { name: "with ramp-up", options: {}, tolerance: 0.05 },
    {
      name: "without ramp-up (exact least-loaded)",
      options: { rampUp: { startFactor: 1 } },
      tolerance: 1e-9,
    },
  ]) {
    it(`keeps in-flight exact and bounded, and picks the most spare (${variant.name})`, () => {
      for (let seed = 1; seed <= 12; seed++) {
        const rnd = seededRandom(seed * 7919);
        const { add, select, pool, advance, clock } = setup(
          { ...variant.options, breaker: { failureThreshold: 3 } },
          seed,
        );
        const models = ["m1", "m2"];
        const ids: string[] = [];
        for (let i = 0; i < 8; i++) {
          const id = `n${i}`;
          ids.push(id);
          add(id, {
            models: i % 3 === 0 ? ["m1", "m2"] : [models[i % 2] as string],
            declaredCapacity: 1 + Math.floor(rnd() * 5),
            registeredAt: clock.t - rnd() * 10 * DAY,
            benchmarkTokPerSec: rnd() < 0.1 ? 3 : 20,
          });
        }
        const outstanding: Lease[] = [];
        const released: Lease[] = [];
        const eligibleSpares = (model: string, exclude: string[]) => {
          const out = new Map<string, number>();
          for (const instance of pool.instances()) {
            if (!instance.models.includes(model) || exclude.includes(instance.id)) continue;
            if (pool.isStale(instance) || pool.belowFloor(instance) || !instance.breaker.canAdmit()) continue;
            const spare = instance.declaredCapacity * pool.rampFactor(instance) - instance.inFlight;
            if (spare > 0) out.set(instance.id, spare);
          }
          return out;
        };
        for (let step = 0; step < 1500; step++) {
          const r = rnd();
          if (r < 0.45) {
            const model = models[Math.floor(rnd() * 2)] as string;
            const exclude = ids.filter(() => rnd() < 0.15);
            const spares = eligibleSpares(model, exclude);
            const best = Math.max(0, ...spares.values());
            let lease: Lease | undefined;
            try {
              lease = select(model, { exclude });
            } catch (error) {
              expect(isGbtError(error, "BUSY")).toBe(true);
              expect(spares.size).toBe(0);
            }
            if (lease !== undefined) {
              const instance = lease.instance;
              expect(spares.has(instance.id)).toBe(true);
              expect(spares.get(instance.id) as number).toBeGreaterThanOrEqual(best - variant.tolerance);
              expect(instance.inFlight).toBeLessThanOrEqual(
                Math.ceil(instance.declaredCapacity * pool.rampFactor(instance) - 1e-9),
              );
              outstanding.push(lease);
            }
          } else if (r < 0.8 && outstanding.length > 0) {
            const j = Math.floor(rnd() * outstanding.length);
            const lease = outstanding[j] as Lease;
            outstanding[j] = outstanding[outstanding.length - 1] as Lease;
            outstanding.pop();
            const o = rnd();
            const outcome = o < 0.7 ? "success" : o < 0.85 ? "failure" : o < 0.95 ? "neutral" : "cooldown";
            expect(lease.release(outcome, { outputTokens: 64, generationMs: 1_000 + rnd() * 20_000 })).toBe(
              true,
            );
            released.push(lease);
          } else if (r < 0.9) {
            advance(Math.floor(rnd() * 8_000));
          } else if (r < 0.98) {
            // Everyone but n7 heartbeats; n7 goes stale and comes back now and then.
            for (const id of ids) if (id !== "n7" || rnd() < 0.2) pool.heartbeat(id);
          } else if (released.length > 0) {
            expect((released[Math.floor(rnd() * released.length)] as Lease).release("success")).toBe(false);
          }
          const held = new Map<string, number>();
          for (const lease of outstanding)
            held.set(lease.instance.id, (held.get(lease.instance.id) ?? 0) + 1);
          for (const instance of pool.instances()) {
            // Plain comparison first: expect() on every step of every seed is slow.
            if (instance.inFlight !== (held.get(instance.id) ?? 0) || instance.inFlight < 0) {
              expect({ id: instance.id, step, inFlight: instance.inFlight }).toEqual({
                id: instance.id,
                step,
                inFlight: held.get(instance.id) ?? 0,
              });
            }
          }
        }
        for (const lease of outstanding) lease.release("success");
        for (const instance of pool.instances()) expect(instance.inFlight).toBe(0);
      }
    });
  }
});
