/**
 * The live registry of serving instances: who serves which model, their declared capacity,
 * heartbeats, in-flight requests, breaker and health, laid out for an O(log n) pick.
 *
 * Each model has a pool: all the instances that serve it, and a heap of those that may take a
 * request, ordered by spare capacity (then health, then a random tie key). The numbers live in
 * typed arrays indexed by slot. Every event keeps the heaps right: a lease taken or released
 * moves the instance in its heaps; a breaker that parks it, a 429 cooldown or falling below the
 * throughput floor takes it out, and a wake-up queue puts it back when its time comes; a
 * stale instance is dropped when it reaches the top and comes back with its next heartbeat.
 *
 * The spare key uses the ramp-up factor of the instance's last event (lease, release,
 * heartbeat): at most one heartbeat interval old, a drift of about 1e-5 of its capacity.
 * Everything time-dependent reads the injected clock.
 */
import { GbtError } from "@gbt/protocol";
import { CandidateHeap, Membership, WakeupQueue } from "./candidate-heap.js";
import {
  type Admission,
  type CallOutcome,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "./circuit-breaker.js";
import {
  HealthWindow,
  type HealthWindowOptions,
  type ResolvedHealthWindowOptions,
  resolveHealthWindowOptions,
} from "./health-score.js";
import { requireNumber } from "./options.js";
import {
  type RampUpOptions,
  type ResolvedRampUpOptions,
  type ResolvedSwitchPenaltyOptions,
  rampFactor,
  resolveRampUpOptions,
  resolveSwitchPenaltyOptions,
  type SwitchPenaltyOptions,
  switchPenalty,
} from "./ramp-up.js";

export interface RegistryOptions {
  /** Expected heartbeat interval (default 10 s). */
  heartbeatIntervalMs?: number;
  /** An instance is stale once this many heartbeats in a row are missed (default 3). */
  missedHeartbeats?: number;
  /** Throughput floor in tokens/s; slower instances get no traffic (default 5). */
  minTokPerSec?: number;
  /** Weight of a new measurement in the observed-throughput moving average (default 0.3). */
  throughputSmoothing?: number;
  /** Completions shorter than this do not update the observed throughput (default 16 tokens). */
  minTokensForThroughput?: number;
  rampUp?: RampUpOptions;
  switchPenalty?: SwitchPenaltyOptions;
  breaker?: CircuitBreakerOptions;
  health?: HealthWindowOptions;
  /** Uniform [0, 1) source of the random tie-break (default Math.random). */
  random?: () => number;
}

/** What a node declares when it registers (already signature-checked and parsed upstream). */
export interface InstanceRegistration {
  id: string;
  nodeAddress: string;
  url: string;
  models: readonly string[];
  /** Concurrent requests the instance can serve at full ramp. */
  declaredCapacity: number;
  /** Defaults to now for a new instance; a re-registration keeps the original time. */
  registeredAt?: number;
  /** Decode throughput from the node's signed benchmark record, if any. */
  benchmarkTokPerSec?: number | null;
}

export interface HeartbeatUpdate {
  /** The models served now; a change counts as a model switch. */
  models?: readonly string[];
}

/** Facts about a finished request that feed the observed throughput and the cooldown. */
export interface ReleaseStats {
  /** Tokens generated. */
  outputTokens?: number;
  /** Time spent generating them (first to last token), in ms. */
  generationMs?: number;
  /** With outcome "cooldown": the node's Retry-After, in ms. */
  retryAfterMs?: number;
}

const INITIAL_SLOTS = 1024;

/** One registered instance. Its live numbers are read from the registry's arrays. */
export class RoutingInstance {
  readonly id: string;
  nodeAddress: string;
  url: string;
  models: readonly string[];
  declaredCapacity: number;
  readonly registeredAt: number;
  benchmarkTokPerSec: number | null;
  /** When the served models last changed (null: never), for the anti-flapping multiplier. */
  modelSwitchedAt: number | null = null;
  readonly breaker: CircuitBreaker;
  readonly health: HealthWindow;
  /** Index into the registry's arrays; −1 once removed. */
  slot: number;
  /** Its entries in the heaps of the models it serves. */
  memberships: Membership[] = [];
  /** Whether its memberships are in their heaps (it may take a request). */
  inHeaps = false;
  /** The wake-up time queued for it while parked (−∞ when none). */
  wakeAt = Number.NEGATIVE_INFINITY;
  #registry: InstanceRegistry;
  /** The live numbers, kept here once the instance is removed so outstanding leases still settle. */
  #detached = { inFlight: 0, lastHeartbeatAt: 0, observedTokPerSec: Number.NaN };

  constructor(registry: InstanceRegistry, slot: number, init: InstanceRegistration, registeredAt: number) {
    this.#registry = registry;
    this.slot = slot;
    this.id = init.id;
    this.nodeAddress = init.nodeAddress;
    this.url = init.url;
    this.models = [...init.models];
    this.declaredCapacity = init.declaredCapacity;
    this.registeredAt = registeredAt;
    this.benchmarkTokPerSec = init.benchmarkTokPerSec ?? null;
    this.breaker = new CircuitBreaker(registry.breakerOptions, registry.now);
    this.health = new HealthWindow(registry.healthOptions);
  }

  get inFlight(): number {
    return this.slot < 0 ? this.#detached.inFlight : (this.#registry.inFlight[this.slot] ?? 0);
  }

  get lastHeartbeatAt(): number {
    return this.slot < 0 ? this.#detached.lastHeartbeatAt : (this.#registry.lastHeartbeatAt[this.slot] ?? 0);
  }

  /** Moving average of measured decode throughput, null until measured. */
  get observedTokPerSec(): number | null {
    const value =
      this.slot < 0
        ? this.#detached.observedTokPerSec
        : (this.#registry.observedTokPerSec[this.slot] ?? Number.NaN);
    return Number.isNaN(value) ? null : value;
  }

  /** The throughput the floor is checked against: observed when known, else the benchmark. */
  get tokPerSec(): number | null {
    return this.observedTokPerSec ?? this.benchmarkTokPerSec;
  }

  /** Called by the registry when the instance is removed: the live numbers move in here. */
  detach(): void {
    const r = this.#registry;
    const slot = this.slot;
    this.#detached = {
      inFlight: r.inFlight[slot] ?? 0,
      lastHeartbeatAt: r.lastHeartbeatAt[slot] ?? 0,
      observedTokPerSec: r.observedTokPerSec[slot] ?? Number.NaN,
    };
    this.slot = -1;
  }

  /** Used by a lease of a removed instance. */
  adjustDetachedInFlight(delta: number): void {
    this.#detached.inFlight += delta;
  }

  setDetachedObserved(value: number): void {
    this.#detached.observedTokPerSec = value;
  }
}

/** The instances serving one model: all of them, and the heap of those that may take a request. */
export class ModelPool {
  readonly model: string;
  readonly heap: CandidateHeap;
  readonly members: Membership[] = [];

  constructor(model: string, heap: CandidateHeap) {
    this.model = model;
    this.heap = heap;
  }
}

export class InstanceRegistry {
  readonly now: () => number;
  readonly random: () => number;
  readonly heartbeatIntervalMs: number;
  readonly missedHeartbeats: number;
  /** now − lastHeartbeatAt beyond this makes an instance stale. */
  readonly staleAfterMs: number;
  readonly minTokPerSec: number;
  readonly throughputSmoothing: number;
  readonly minTokensForThroughput: number;
  readonly rampUpOptions: ResolvedRampUpOptions;
  readonly switchPenaltyOptions: ResolvedSwitchPenaltyOptions;
  readonly breakerOptions: ResolvedBreakerOptions;
  readonly healthOptions: ResolvedHealthWindowOptions;

  // Per-slot numbers. Grown by doubling; a freed slot is reused.
  capacity = new Float64Array(INITIAL_SLOTS);
  registeredAt = new Float64Array(INITIAL_SLOTS);
  lastHeartbeatAt = new Float64Array(INITIAL_SLOTS);
  inFlight = new Float64Array(INITIAL_SLOTS);
  /** Until when the instance is not admitted: breaker open, probe out, cooldown, or +∞ below the floor. */
  blockedUntil = new Float64Array(INITIAL_SLOTS);
  observedTokPerSec = new Float64Array(INITIAL_SLOTS).fill(Number.NaN);
  /** Heap keys: spare capacity at the last event, cached health score, random tie key. */
  spareKey = new Float64Array(INITIAL_SLOTS);
  healthScore = new Float64Array(INITIAL_SLOTS);
  tieKey = new Float64Array(INITIAL_SLOTS);
  healthValidUntil = new Float64Array(INITIAL_SLOTS);
  instanceAt: (RoutingInstance | undefined)[] = [];

  readonly #byId = new Map<string, RoutingInstance>();
  readonly #pools = new Map<string, ModelPool>();
  readonly #wakeups = new WakeupQueue<RoutingInstance>();
  readonly #freeSlots: number[] = [];
  #slotCount = 0;

  constructor(options: RegistryOptions = {}, now: () => number = Date.now) {
    this.now = now;
    this.random = options.random ?? Math.random;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    this.missedHeartbeats = options.missedHeartbeats ?? 3;
    this.minTokPerSec = options.minTokPerSec ?? 5;
    this.throughputSmoothing = options.throughputSmoothing ?? 0.3;
    this.minTokensForThroughput = options.minTokensForThroughput ?? 16;
    requireNumber("heartbeatIntervalMs", this.heartbeatIntervalMs, 1);
    requireNumber("missedHeartbeats", this.missedHeartbeats, 1);
    requireNumber("minTokPerSec", this.minTokPerSec, 0);
    requireNumber("throughputSmoothing", this.throughputSmoothing, Number.MIN_VALUE, 1);
    requireNumber("minTokensForThroughput", this.minTokensForThroughput, 0);
    this.staleAfterMs = this.heartbeatIntervalMs * this.missedHeartbeats;
    this.rampUpOptions = resolveRampUpOptions(options.rampUp);
    this.switchPenaltyOptions = resolveSwitchPenaltyOptions(options.switchPenalty);
    this.breakerOptions = resolveBreakerOptions(options.breaker);
    this.healthOptions = resolveHealthWindowOptions(options.health);
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): RoutingInstance | undefined {
    return this.#byId.get(id);
  }

  instances(): IterableIterator<RoutingInstance> {
    return this.#byId.values();
  }

  /** The pool of the instances serving `model` (undefined when none ever did). */
  pool(model: string): ModelPool | undefined {
    return this.#pools.get(model);
  }

  /**
   * Adds an instance, or updates one that registers again (a node restart): its registration
   * time, in-flight count, breaker, health and observed throughput are kept. A new benchmark
   * figure resets the observed throughput, so a node that fell below the floor can come back
   * after re-benchmarking. Registering counts as a heartbeat.
   */
  register(registration: InstanceRegistration): RoutingInstance {
    validateRegistration(registration);
    const now = this.now();
    const existing = this.#byId.get(registration.id);
    if (existing !== undefined) {
      const slot = existing.slot;
      existing.nodeAddress = registration.nodeAddress;
      existing.url = registration.url;
      existing.declaredCapacity = registration.declaredCapacity;
      this.capacity[slot] = registration.declaredCapacity;
      const benchmark = registration.benchmarkTokPerSec ?? null;
      if (benchmark !== existing.benchmarkTokPerSec) {
        existing.benchmarkTokPerSec = benchmark;
        this.observedTokPerSec[slot] = Number.NaN;
      }
      this.lastHeartbeatAt[slot] = now;
      this.#setModels(existing, registration.models, now);
      this.#touch(existing, now);
      this.reconcile(existing, now);
      return existing;
    }
    if (this.#slotCount === this.capacity.length && this.#freeSlots.length === 0) {
      this.#grow(this.capacity.length * 2);
    }
    const slot = this.#freeSlots.pop() ?? this.#slotCount++;
    const instance = new RoutingInstance(this, slot, registration, registration.registeredAt ?? now);
    this.#byId.set(instance.id, instance);
    this.instanceAt[slot] = instance;
    this.capacity[slot] = instance.declaredCapacity;
    this.registeredAt[slot] = instance.registeredAt;
    this.lastHeartbeatAt[slot] = now;
    this.inFlight[slot] = 0;
    this.observedTokPerSec[slot] = Number.NaN;
    this.healthValidUntil[slot] = Number.NEGATIVE_INFINITY;
    this.#join(instance);
    this.#touch(instance, now);
    this.reconcile(instance, now);
    return instance;
  }

  /**
   * Records a heartbeat (which also refreshes the instance's ramp-up and health keys); throws
   * NOT_FOUND for an instance that never registered or was removed.
   */
  heartbeat(id: string, update: HeartbeatUpdate = {}): RoutingInstance {
    const instance = this.#byId.get(id);
    if (instance === undefined) {
      throw new GbtError("NOT_FOUND", `Heartbeat from unknown instance ${id}.`, {
        details: { instance: id },
        hint: "The node must register (signed NodeRegistration) before it sends heartbeats.",
      });
    }
    const now = this.now();
    if (update.models !== undefined) {
      validateModels(update.models, id);
      this.#setModels(instance, update.models, now);
    }
    this.lastHeartbeatAt[instance.slot] = now;
    this.#touch(instance, now);
    this.reconcile(instance, now);
    return instance;
  }

  /** Forgets an instance; leases still out on it settle against the detached object. */
  remove(id: string): boolean {
    const instance = this.#byId.get(id);
    if (instance === undefined) return false;
    const slot = instance.slot;
    this.#leave(instance);
    instance.detach();
    this.#byId.delete(id);
    this.instanceAt[slot] = undefined;
    this.#freeSlots.push(slot);
    return true;
  }

  /** Whether the instance has missed `missedHeartbeats` heartbeats in a row. */
  isStale(instance: RoutingInstance, now = this.now()): boolean {
    return instance.slot < 0 || now - instance.lastHeartbeatAt > this.staleAfterMs;
  }

  belowFloor(instance: RoutingInstance): boolean {
    const tps = instance.tokPerSec;
    return tps !== null && tps < this.minTokPerSec;
  }

  rampFactor(instance: RoutingInstance, now = this.now()): number {
    return rampFactor(instance.registeredAt, now, this.rampUpOptions);
  }

  switchPenalty(instance: RoutingInstance, now = this.now()): number {
    return switchPenalty(instance.modelSwitchedAt, now, this.switchPenaltyOptions);
  }

  /** Models with at least one active (non-stale) instance, for `GET /v1/models`. */
  activeModels(): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [model, pool] of this.#pools) {
      if (pool.members.some((m) => now - (this.lastHeartbeatAt[m.slot] ?? 0) <= this.staleAfterMs)) {
        out.push(model);
      }
    }
    return out.sort();
  }

  /** Puts parked instances whose wake-up time has come back in their heaps. */
  processWakeups(now: number): void {
    const wakeups = this.#wakeups;
    while (wakeups.next <= now) {
      const instance = wakeups.pop();
      if (instance.slot < 0 || instance.wakeAt > now) continue;
      instance.wakeAt = Number.NEGATIVE_INFINITY;
      this.reconcile(instance, now);
    }
  }

  /** Takes an in-flight slot on a picked instance; its breaker has already admitted the request. */
  acquire(instance: RoutingInstance, admission: Admission): void {
    if (instance.slot < 0) {
      instance.adjustDetachedInFlight(1);
      return;
    }
    const now = this.now();
    this.inFlight[instance.slot] = (this.inFlight[instance.slot] ?? 0) + 1;
    this.#touch(instance, now);
    // A probe closes the half-open door behind it; ordinary admissions change nothing there.
    if (admission > 0) this.reconcile(instance, now);
  }

  /** Gives the slot back and records the outcome in breaker, health and throughput. */
  settle(instance: RoutingInstance, admission: Admission, outcome: CallOutcome, stats?: ReleaseStats): void {
    const now = this.now();
    const slot = instance.slot;
    if (slot < 0) instance.adjustDetachedInFlight(-1);
    else this.inFlight[slot] = (this.inFlight[slot] ?? 1) - 1;
    instance.breaker.record(outcome, admission, stats?.retryAfterMs);
    instance.health.record(outcome, now);
    if (outcome === "success" && stats !== undefined) this.#observeThroughput(instance, stats);
    if (slot < 0) return;
    this.healthValidUntil[slot] = Number.NEGATIVE_INFINITY;
    this.#touch(instance, now);
    this.reconcile(instance, now);
  }

  /**
   * Puts the instance in or takes it out of its heaps after anything that may change whether it
   * can take a request (breaker, cooldown, floor, heartbeat), and queues its wake-up if parked.
   */
  reconcile(instance: RoutingInstance, now: number): void {
    const slot = instance.slot;
    if (slot < 0) return;
    const blocked = this.belowFloor(instance) ? Number.POSITIVE_INFINITY : instance.breaker.blockedUntil();
    this.blockedUntil[slot] = blocked;
    const stale = now - (this.lastHeartbeatAt[slot] ?? 0) > this.staleAfterMs;
    if (!stale && blocked <= now) {
      this.#enter(instance);
      return;
    }
    this.evict(instance);
    if (!stale && blocked !== Number.POSITIVE_INFINITY && blocked !== instance.wakeAt) {
      instance.wakeAt = blocked;
      this.#wakeups.push(blocked, instance);
    }
  }

  /** Takes the instance out of its heaps (its next event or wake-up reconsiders it). */
  evict(instance: RoutingInstance): void {
    if (!instance.inHeaps) return;
    instance.inHeaps = false;
    for (const member of instance.memberships) member.heap.remove(member);
  }

  #enter(instance: RoutingInstance): void {
    if (instance.inHeaps) return;
    instance.inHeaps = true;
    for (const member of instance.memberships) member.heap.insert(member);
  }

  /** Recomputes the heap keys of the instance (spare, health, tie) and restores heap order. */
  #touch(instance: RoutingInstance, now: number): void {
    const slot = instance.slot;
    if (now >= (this.healthValidUntil[slot] ?? 0)) {
      this.healthScore[slot] = instance.health.score(now);
      this.healthValidUntil[slot] = instance.health.validUntil(now);
    }
    this.spareKey[slot] =
      instance.declaredCapacity * rampFactor(instance.registeredAt, now, this.rampUpOptions) -
      (this.inFlight[slot] ?? 0);
    this.tieKey[slot] = this.random();
    if (instance.inHeaps) for (const member of instance.memberships) member.heap.update(member);
  }

  #observeThroughput(instance: RoutingInstance, stats: ReleaseStats): void {
    const tokens = stats.outputTokens;
    const ms = stats.generationMs;
    if (tokens === undefined || ms === undefined || !(ms > 0) || !(tokens >= this.minTokensForThroughput))
      return;
    const measured = (tokens * 1000) / ms;
    if (!Number.isFinite(measured)) return;
    const previous = instance.observedTokPerSec;
    const next = previous === null ? measured : previous + this.throughputSmoothing * (measured - previous);
    if (instance.slot < 0) instance.setDetachedObserved(next);
    else this.observedTokPerSec[instance.slot] = next;
  }

  #setModels(instance: RoutingInstance, models: readonly string[], now: number): void {
    if (sameModels(instance.models, models)) return;
    const wasIn = instance.inHeaps;
    this.#leave(instance);
    instance.models = [...new Set(models)];
    this.#join(instance);
    if (wasIn) this.#enter(instance);
    instance.modelSwitchedAt = now;
  }

  /** Creates the instance's memberships in the pools of its models (outside the heaps). */
  #join(instance: RoutingInstance): void {
    instance.memberships = instance.models.map((model) => {
      let pool = this.#pools.get(model);
      if (pool === undefined) {
        pool = new ModelPool(model, new CandidateHeap(this));
        this.#pools.set(model, pool);
      }
      const member = new Membership(instance.slot, pool.heap);
      pool.members.push(member);
      return member;
    });
  }

  #leave(instance: RoutingInstance): void {
    this.evict(instance);
    for (const model of instance.models) {
      const pool = this.#pools.get(model);
      if (pool === undefined) continue;
      const at = pool.members.findIndex((m) => m.slot === instance.slot);
      if (at >= 0) {
        pool.members[at] = pool.members[pool.members.length - 1] as Membership;
        pool.members.pop();
      }
      if (pool.members.length === 0) this.#pools.delete(model);
    }
    instance.memberships = [];
  }

  #grow(size: number): void {
    const grow = (from: Float64Array, fill = 0): Float64Array<ArrayBuffer> => {
      const to = new Float64Array(size).fill(fill);
      to.set(from);
      return to;
    };
    this.capacity = grow(this.capacity);
    this.registeredAt = grow(this.registeredAt);
    this.lastHeartbeatAt = grow(this.lastHeartbeatAt);
    this.inFlight = grow(this.inFlight);
    this.blockedUntil = grow(this.blockedUntil);
    this.observedTokPerSec = grow(this.observedTokPerSec, Number.NaN);
    this.spareKey = grow(this.spareKey);
    this.healthScore = grow(this.healthScore);
    this.tieKey = grow(this.tieKey);
    this.healthValidUntil = grow(this.healthValidUntil);
  }
}

function sameModels(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(b);
  if (set.size !== a.length) return false;
  for (const model of a) if (!set.has(model)) return false;
  return true;
}

function validateRegistration(registration: InstanceRegistration): void {
  const problem = (field: string, expected: string, value: unknown): GbtError =>
    new GbtError("INVALID_INPUT", `Instance registration field ${field} is invalid; expected ${expected}.`, {
      details: { instance: registration.id, field, value },
      hint: "Fix the node's registration (gbt serve --gateway sends it from the node config).",
    });
  if (typeof registration.id !== "string" || registration.id.length === 0) {
    throw problem("id", "a non-empty string", registration.id);
  }
  if (!(Number.isFinite(registration.declaredCapacity) && registration.declaredCapacity > 0)) {
    throw problem("declaredCapacity", "a finite number > 0", registration.declaredCapacity);
  }
  const benchmark = registration.benchmarkTokPerSec;
  if (benchmark !== undefined && benchmark !== null && !(Number.isFinite(benchmark) && benchmark >= 0)) {
    throw problem("benchmarkTokPerSec", "null or a finite number ≥ 0", benchmark);
  }
  if (registration.registeredAt !== undefined && !Number.isFinite(registration.registeredAt)) {
    throw problem("registeredAt", "a time in ms", registration.registeredAt);
  }
  validateModels(registration.models, registration.id);
}

function validateModels(models: readonly string[], id: string): void {
  if (!Array.isArray(models) || models.some((m) => typeof m !== "string" || m.length === 0)) {
    throw new GbtError("INVALID_INPUT", `Instance ${id} declared an invalid model list.`, {
      details: { instance: id, models },
      hint: "Models are non-empty names, e.g. the ids shown by `gbt node status`.",
    });
  }
}
