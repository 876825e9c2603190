/**
 * The router: picks the instance that serves a request and hands out a lease on it.
 *
 * Candidates are the active (not stale) instances serving the model whose breaker admits a
 * request and whose throughput meets the floor. Among them the one with the most spare
 * capacity wins, spare = declaredCapacity × rampFactor − inFlight (it must be > 0); ties go to
 * the higher health score, then to a random pick (injected rng). The lease takes one in-flight
 * slot; releasing it gives the slot back and records the outcome in breaker and health.
 *
 * A pick reads the top of the model's candidate heap (see instance-registry.ts): O(log n) with
 * no allocation besides the lease, a few microseconds among 10,000 instances of one model.
 * Because spare is not an integer while an instance ramps up, in-flight can reach
 * ceil(declaredCapacity × rampFactor), never more.
 */
import { GbtError } from "@gbt/protocol";
import type { Membership } from "./candidate-heap.js";
import { type Admission, type BreakerState, type CallOutcome, REFUSED } from "./circuit-breaker.js";
import type { HealthCounts } from "./health-score.js";
import type { InstanceRegistry, ReleaseStats, RoutingInstance } from "./instance-registry.js";

export interface SelectOptions {
  /** Instance ids not to pick, e.g. the ones a request already failed on before its first byte. */
  exclude?: readonly string[];
  /**
   * Instances this request may use at all (e.g. a minimum trust tier); the others are held out
   * like excluded ones and counted as `belowTier` when nothing is left.
   */
  admit?: (instance: RoutingInstance) => boolean;
}

/** One routed request's hold on an instance. Release it exactly once, whatever happens. */
export interface RoutingLease {
  readonly instance: RoutingInstance;
  /** Whether this request is the single probe of a half-open breaker. */
  readonly probe: boolean;
  readonly released: boolean;
  /**
   * Gives the in-flight slot back and records how the request ended: "success", "failure"
   * (connection error, 5xx, timeout, stalled stream), "neutral" (consumer 4xx) or "cooldown"
   * (the node's 429, with `stats.retryAfterMs`). Returns false if already released.
   */
  release(outcome: CallOutcome, stats?: ReleaseStats): boolean;
}

/** One instance's routing state, as `GET /v1/gateway/nodes` shows it. */
export interface GatewayInstanceView {
  id: string;
  nodeAddress: string;
  url: string;
  models: string[];
  status: "active" | "stale";
  lastHeartbeatAt: number;
  registeredAt: number;
  breaker: BreakerState;
  probing: boolean;
  cooldownUntil: number | null;
  /** Whether a request could be routed to it now (active, admitted, above the floor, spare > 0). */
  eligible: boolean;
  rampFactor: number;
  switchPenalty: number;
  declaredCapacity: number;
  /** declaredCapacity × rampFactor. */
  capacity: number;
  inFlight: number;
  spare: number;
  healthScore: number;
  health: HealthCounts;
  tokPerSec: { benchmark: number | null; observed: number | null };
  belowFloor: boolean;
}

class Lease implements RoutingLease {
  readonly instance: RoutingInstance;
  readonly #registry: InstanceRegistry;
  readonly #admission: Admission;
  #released = false;

  constructor(registry: InstanceRegistry, instance: RoutingInstance, admission: Admission) {
    this.#registry = registry;
    this.instance = instance;
    this.#admission = admission;
  }

  get probe(): boolean {
    return this.#admission > 0;
  }

  get released(): boolean {
    return this.#released;
  }

  release(outcome: CallOutcome, stats?: ReleaseStats): boolean {
    if (this.#released) return false;
    this.#released = true;
    this.#registry.settle(this.instance, this.#admission, outcome, stats);
    return true;
  }
}

export class Router {
  readonly registry: InstanceRegistry;
  /** Scratch: excluded memberships held out of the heap during one pick. */
  readonly #held: Membership[] = [];

  /** The random tie-break comes from the registry's `random` option. */
  constructor(registry: InstanceRegistry) {
    this.registry = registry;
  }

  /**
   * Picks an instance for a request to `model` and leases it. Throws MODEL_NOT_FOUND when no
   * registered instance serves the model, BUSY when none of them can take a request now
   * (stale, parked, cooling down, below the floor, full or excluded: the details count each).
   */
  selectInstance(model: string, options: SelectOptions = {}): RoutingLease {
    const registry = this.registry;
    for (;;) {
      const instance = this.#pick(model, options.exclude, options.admit);
      if (instance === undefined) throw this.#noCandidate(model, options.exclude, options.admit);
      const admission = instance.breaker.acquire();
      if (admission === REFUSED) {
        // The heap was behind the breaker; take the instance out and pick again.
        registry.reconcile(instance, registry.now());
        continue;
      }
      registry.acquire(instance, admission);
      return new Lease(registry, instance, admission);
    }
  }

  /** Every registered instance's routing state, sorted by id. */
  gatewayView(): GatewayInstanceView[] {
    const registry = this.registry;
    const now = registry.now();
    const out: GatewayInstanceView[] = [];
    for (const instance of registry.instances()) {
      const stale = registry.isStale(instance, now);
      const rampFactor = registry.rampFactor(instance, now);
      const capacity = instance.declaredCapacity * rampFactor;
      const inFlight = instance.inFlight;
      const spare = capacity - inFlight;
      const belowFloor = registry.belowFloor(instance);
      const admits = instance.breaker.canAdmit();
      out.push({
        id: instance.id,
        nodeAddress: instance.nodeAddress,
        url: instance.url,
        models: [...instance.models],
        status: stale ? "stale" : "active",
        lastHeartbeatAt: instance.lastHeartbeatAt,
        registeredAt: instance.registeredAt,
        breaker: instance.breaker.state,
        probing: instance.breaker.probing,
        cooldownUntil: instance.breaker.cooldownUntil,
        eligible: !stale && admits && !belowFloor && spare > 0,
        rampFactor,
        switchPenalty: registry.switchPenalty(instance, now),
        declaredCapacity: instance.declaredCapacity,
        capacity,
        inFlight,
        spare,
        healthScore: instance.health.score(now),
        health: instance.health.counts(now),
        tokPerSec: { benchmark: instance.benchmarkTokPerSec, observed: instance.observedTokPerSec },
        belowFloor,
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The hot path: the top of the model's heap, after dropping what turned stale or parked. */
  #pick(
    model: string,
    exclude: readonly string[] | undefined,
    admit: ((instance: RoutingInstance) => boolean) | undefined,
  ): RoutingInstance | undefined {
    const registry = this.registry;
    const pool = registry.pool(model);
    if (pool === undefined) return undefined;
    const now = registry.now();
    registry.processWakeups(now);
    const heap = pool.heap;
    const held = this.#held;
    let chosen: RoutingInstance | undefined;
    for (;;) {
      const top = heap.peek();
      if (top === undefined) break;
      const slot = top.slot;
      const instance = registry.instanceAt[slot] as RoutingInstance;
      if (now - (registry.lastHeartbeatAt[slot] as number) > registry.staleAfterMs) {
        registry.evict(instance); // back with its next heartbeat
        continue;
      }
      if ((registry.blockedUntil[slot] as number) > now) {
        registry.reconcile(instance, now);
        continue;
      }
      if (exclude?.includes(instance.id) || (admit !== undefined && !admit(instance))) {
        heap.remove(top);
        held.push(top);
        continue;
      }
      if ((registry.spareKey[slot] as number) > 0) chosen = instance;
      break;
    }
    while (held.length > 0) heap.insert(held.pop() as Membership);
    return chosen;
  }

  /** Explains an empty pick; only on the failure path, so it may take its time. */
  #noCandidate(
    model: string,
    exclude: readonly string[] | undefined,
    admit?: (instance: RoutingInstance) => boolean,
  ): GbtError {
    const registry = this.registry;
    const pool = registry.pool(model);
    if (pool === undefined) {
      return new GbtError("MODEL_NOT_FOUND", `No instance serves model ${model}.`, {
        details: { model },
        hint: "Pick a model listed by GET /v1/models.",
      });
    }
    const now = registry.now();
    const excluded = new Set(exclude ?? []);
    const counts = {
      instances: pool.members.length,
      stale: 0,
      excluded: 0,
      belowTier: 0,
      parked: 0,
      belowFloor: 0,
      full: 0,
    };
    for (const member of pool.members) {
      const instance = registry.instanceAt[member.slot];
      if (instance === undefined) continue;
      if (registry.isStale(instance, now)) counts.stale += 1;
      else if (excluded.has(instance.id)) counts.excluded += 1;
      else if (admit !== undefined && !admit(instance)) counts.belowTier += 1;
      else if (registry.belowFloor(instance)) counts.belowFloor += 1;
      else if (!instance.breaker.canAdmit()) counts.parked += 1;
      else counts.full += 1;
    }
    return new GbtError(
      "BUSY",
      `No instance of model ${model} can take a request now (${counts.instances} registered: ` +
        `${counts.stale} stale, ${counts.parked} parked or cooling down, ${counts.belowFloor} below the ` +
        `${registry.minTokPerSec} tok/s floor, ${counts.full} at capacity, ${counts.excluded} already tried` +
        `${counts.belowTier > 0 ? `, ${counts.belowTier} below the requested trust tier` : ""}).`,
      { details: { model, ...counts }, hint: "Retry shortly; capacity frees up as requests finish." },
    );
  }
}
