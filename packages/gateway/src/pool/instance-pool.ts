/**
 * The pool: every serving instance as one record (routing state and link), and the pick that
 * leases one of them to a request.
 *
 * Candidates are the active (not stale) instances serving the model whose breaker admits a
 * request and whose throughput meets the floor. Among them the one with the most spare capacity
 * wins, spare = declaredCapacity × rampFactor − inFlight (it must be > 0); ties go to the higher
 * health score, then to a random pick (injected rng). A lease takes one in-flight slot; releasing
 * it gives the slot back and records the outcome in breaker and health.
 *
 * Each model has a heap of the instances that may take a request, ordered by spare capacity
 * (then health, then a random tie key), whose keys live in the private slot table. Every event
 * keeps the heaps right: a lease taken or released moves the instance in its heaps; a breaker
 * that parks it, a 429 cooldown or falling below the throughput floor takes it out, and a wake-up
 * queue puts it back when its time comes; a stale instance is dropped when it reaches the top and
 * comes back with its next heartbeat. A pick reads the top of the heap: O(log n) with no
 * allocation besides the lease, a few microseconds among 10,000 instances of one model. Because
 * spare is not an integer while an instance ramps up, in-flight can reach
 * ceil(declaredCapacity × rampFactor), never more.
 *
 * The spare key uses the ramp-up factor of the instance's last event (lease, release,
 * heartbeat): at most one heartbeat interval old, a drift of about 1e-5 of its capacity.
 * Everything time-dependent reads the injected clock.
 */
import { GbtError } from "@gbt/protocol";
import type { Address } from "viem";
import { CandidateHeap, Membership, WakeupQueue } from "./candidate-heap.js";
import { CHAT_ONLY_MASK, needsMask } from "./capabilities.js";
import {
  ADMITTED,
  type Admission,
  type BreakerState,
  type CallOutcome,
  type CircuitBreakerOptions,
  REFUSED,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "./circuit-breaker.js";
import {
  type HealthCounts,
  type HealthWindowOptions,
  type ResolvedHealthWindowOptions,
  resolveHealthWindowOptions,
} from "./health-score.js";
import {
  type CandidateCounts,
  type FinishLease,
  type LeaseOptions,
  type LeaseResult,
  type NoCandidate,
  PoolLease,
  type ReleaseStats,
} from "./lease.js";
import { requireNumber } from "./options.js";
import { type InstanceLink, type InstanceRegistration, linkOf, PoolInstance } from "./pool-instance.js";
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
import { SlotTable } from "./slot-table.js";

export interface PoolOptions {
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
  /** Route to parked instances when every instance of a model is parked (default true). */
  panicMode?: boolean;
}

export interface HeartbeatUpdate {
  /** The models served now; a change counts as a model switch. */
  models?: readonly string[];
  /** A new declared capacity (≥ 1). */
  capacity?: number;
  /** The health the node reported. */
  health?: InstanceLink["lastHealth"];
  /** The node takes no pooled traffic now (it declared capacity 0, e.g. outside its schedule). */
  draining?: boolean;
}

/**
 * Whether a node may register and serve one of its models (e.g. the model registry's "approved
 * only" policy). Models refused are left out of the node's routing; a node left with none is
 * refused with 403 `policy_denied`.
 */
export type ModelAdmission = (model: { id: string; digest?: string | undefined }, node: Address) => boolean;

/** One instance as `GET /v1/gateway/nodes` shows it: routing state, then what its link reported. */
export interface InstanceView {
  id: string;
  nodeAddress: string;
  url: string;
  models: string[];
  status: "active" | "stale" | "draining";
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
  backend: InstanceLink["backend"];
  /** The models as the node reported them, with their digests. */
  modelDigests: InstanceLink["models"];
  lastHealth: InstanceLink["lastHealth"];
  gpu: InstanceLink["gpu"];
}

/** What the active instances of one model can do together (`InstancePool.modelCapabilities`). */
export interface ModelCapabilitySummary {
  /** The union of their capabilities (a capabilities.ts mask). */
  mask: number;
  /** The largest context any of them declared, in tokens. */
  contextLength: number | null;
  /** The embedding size any of them declared (the largest). */
  embeddingDimensions: number | null;
}

/** The instances serving one model: all of them, and the heap of those that may take a request. */
class ModelHeap {
  readonly heap: CandidateHeap;
  readonly members: Membership[] = [];

  constructor(heap: CandidateHeap) {
    this.heap = heap;
  }
}

export class InstancePool {
  readonly now: () => number;
  readonly heartbeatIntervalMs: number;
  readonly missedHeartbeats: number;
  /** now − lastHeartbeatAt beyond this makes an instance stale. */
  readonly staleAfterMs: number;
  readonly minTokPerSec: number;

  readonly #random: () => number;
  readonly #throughputSmoothing: number;
  readonly #minTokensForThroughput: number;
  readonly #rampUp: ResolvedRampUpOptions;
  readonly #switchPenalty: ResolvedSwitchPenaltyOptions;
  readonly #breaker: ResolvedBreakerOptions;
  readonly #health: ResolvedHealthWindowOptions;
  readonly #slots = new SlotTable();
  readonly #byId = new Map<string, PoolInstance>();
  readonly #models = new Map<string, ModelHeap>();
  readonly #wakeups = new WakeupQueue<PoolInstance>();
  /** Scratch: excluded memberships held out of the heap during one pick. */
  readonly #held: Membership[] = [];
  readonly #finish: FinishLease = (instance, admission, outcome, stats) =>
    this.#release(instance, admission, outcome, stats);
  readonly #panicMode: boolean;
  #admission: ModelAdmission | undefined;

  constructor(options: PoolOptions = {}, now: () => number = Date.now) {
    this.now = now;
    this.#random = options.random ?? Math.random;
    this.#panicMode = options.panicMode ?? true;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    this.missedHeartbeats = options.missedHeartbeats ?? 3;
    this.minTokPerSec = options.minTokPerSec ?? 5;
    this.#throughputSmoothing = options.throughputSmoothing ?? 0.3;
    this.#minTokensForThroughput = options.minTokensForThroughput ?? 16;
    requireNumber("heartbeatIntervalMs", this.heartbeatIntervalMs, 1);
    requireNumber("missedHeartbeats", this.missedHeartbeats, 1);
    requireNumber("minTokPerSec", this.minTokPerSec, 0);
    requireNumber("throughputSmoothing", this.#throughputSmoothing, Number.MIN_VALUE, 1);
    requireNumber("minTokensForThroughput", this.#minTokensForThroughput, 0);
    this.staleAfterMs = this.heartbeatIntervalMs * this.missedHeartbeats;
    this.#rampUp = resolveRampUpOptions(options.rampUp);
    this.#switchPenalty = resolveSwitchPenaltyOptions(options.switchPenalty);
    this.#breaker = resolveBreakerOptions(options.breaker);
    this.#health = resolveHealthWindowOptions(options.health);
  }

  /** Requests routed in panic mode (to a parked instance, every instance of their model being parked). */
  panicLeases = 0;

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): PoolInstance | undefined {
    return this.#byId.get(id);
  }

  instances(): IterableIterator<PoolInstance> {
    return this.#byId.values();
  }

  /** Installs (or removes) the check of which models nodes may register and serve. */
  setAdmission(admission: ModelAdmission | undefined): void {
    this.#admission = admission;
  }

  /** Whether `node` may serve `model` here (always, without an admission check). */
  admits(model: { id: string; digest?: string | undefined }, node: Address): boolean {
    return this.#admission === undefined || this.#admission(model, node);
  }

  /**
   * Adds an instance, or updates one that registers again (a node restart): its registration
   * time, in-flight count, breaker, health and observed throughput are kept. A new benchmark
   * figure resets the observed throughput, so a node that fell below the floor can come back
   * after re-benchmarking. Registering counts as a heartbeat.
   */
  register(registration: InstanceRegistration): PoolInstance {
    validateRegistration(registration);
    const now = this.now();
    const slots = this.#slots;
    const existing = this.#byId.get(registration.id);
    if (existing !== undefined) {
      const slot = existing.slot;
      existing.nodeAddress = registration.nodeAddress;
      existing.link = linkOf(registration, existing.link);
      existing.declaredCapacity = registration.declaredCapacity;
      existing.draining = false;
      slots.capacity[slot] = registration.declaredCapacity;
      const benchmark = registration.benchmarkTokPerSec ?? null;
      if (benchmark !== existing.benchmarkTokPerSec) {
        existing.benchmarkTokPerSec = benchmark;
        slots.observedTokPerSec[slot] = Number.NaN;
      }
      slots.lastHeartbeatAt[slot] = now;
      this.#setModels(existing, registration.models, now);
      // Its capabilities come with the (new) link, even when its models are the same.
      existing.models.forEach((model, i) => {
        const member = existing.memberships[i];
        if (member !== undefined) member.caps = existing.capabilityMaskOf(model);
      });
      this.#touch(existing, now);
      this.#reconcile(existing, now);
      return existing;
    }
    const slot = slots.allocate();
    const instance = new PoolInstance(slots, slot, registration, registration.registeredAt ?? now, {
      breaker: this.#breaker,
      health: this.#health,
      now: this.now,
    });
    this.#byId.set(instance.id, instance);
    slots.instanceAt[slot] = instance;
    slots.capacity[slot] = instance.declaredCapacity;
    slots.registeredAt[slot] = instance.registeredAt;
    slots.lastHeartbeatAt[slot] = now;
    slots.inFlight[slot] = 0;
    slots.observedTokPerSec[slot] = Number.NaN;
    slots.healthValidUntil[slot] = Number.NEGATIVE_INFINITY;
    this.#join(instance);
    this.#touch(instance, now);
    this.#reconcile(instance, now);
    return instance;
  }

  /**
   * Records a heartbeat (which also refreshes the instance's ramp-up and health keys); throws
   * NOT_FOUND for an instance that never registered or was removed.
   */
  heartbeat(id: string, update: HeartbeatUpdate = {}): PoolInstance {
    const instance = this.#byId.get(id);
    if (instance === undefined) {
      throw new GbtError("NOT_FOUND", `Heartbeat from unknown instance ${id}.`, {
        details: { instance: id },
        hint: "The node must register (signed NodeRegistration) before it sends heartbeats.",
      });
    }
    const now = this.now();
    if (update.health !== undefined) instance.link.lastHealth = update.health;
    if (update.models !== undefined) {
      validateModels(update.models, id);
      this.#setModels(instance, update.models, now);
    }
    if (update.capacity !== undefined && update.capacity >= 1) {
      instance.declaredCapacity = update.capacity;
      this.#slots.capacity[instance.slot] = update.capacity;
    }
    if (update.draining !== undefined) instance.draining = update.draining;
    this.#slots.lastHeartbeatAt[instance.slot] = now;
    this.#touch(instance, now);
    this.#reconcile(instance, now);
    return instance;
  }

  /**
   * The instance cannot be reached now (its outbound link closed): no new request goes to it, as if
   * it had missed its heartbeats, but its record (ramp-up, breaker, health) waits for its return.
   */
  markUnreachable(id: string): boolean {
    const instance = this.#byId.get(id);
    if (instance === undefined) return false;
    this.#slots.lastHeartbeatAt[instance.slot] = Number.NEGATIVE_INFINITY;
    this.#reconcile(instance, this.now());
    return true;
  }

  /** Forgets an instance; leases still out on it finish against the detached record. */
  remove(id: string): boolean {
    const instance = this.#byId.get(id);
    if (instance === undefined) return false;
    const slot = instance.slot;
    this.#leave(instance);
    instance.detach();
    this.#byId.delete(id);
    this.#slots.free(slot);
    return true;
  }

  /** Whether the instance has missed `missedHeartbeats` heartbeats in a row. */
  isStale(instance: PoolInstance, now = this.now()): boolean {
    return instance.slot < 0 || now - instance.lastHeartbeatAt > this.staleAfterMs;
  }

  belowFloor(instance: PoolInstance): boolean {
    const tps = instance.tokPerSec;
    return tps !== null && tps < this.minTokPerSec;
  }

  rampFactor(instance: PoolInstance, now = this.now()): number {
    return rampFactor(instance.registeredAt, now, this.#rampUp);
  }

  switchPenalty(instance: PoolInstance, now = this.now()): number {
    return switchPenalty(instance.modelSwitchedAt, now, this.#switchPenalty);
  }

  /** Models with at least one active (non-stale) instance, for `GET /v1/models`. */
  activeModels(): string[] {
    const now = this.now();
    const lastHeartbeatAt = this.#slots.lastHeartbeatAt;
    const out: string[] = [];
    for (const [model, entry] of this.#models) {
      if (entry.members.some((m) => now - (lastHeartbeatAt[m.slot] ?? 0) <= this.staleAfterMs))
        out.push(model);
    }
    return out.sort();
  }

  /**
   * What the active (not stale) instances of a model can do together: the union of their
   * capability masks, and the largest context and embedding size any of them declared; undefined
   * when no active instance serves it.
   */
  modelCapabilities(model: string, now = this.now()): ModelCapabilitySummary | undefined {
    const entry = this.#models.get(model);
    if (entry === undefined) return undefined;
    let summary: ModelCapabilitySummary | undefined;
    for (const member of entry.members) {
      const instance = this.#slots.instanceAt[member.slot];
      if (instance === undefined || this.isStale(instance, now)) continue;
      summary ??= { mask: 0, contextLength: null, embeddingDimensions: null };
      summary.mask |= member.caps;
      const declared = instance.capabilitiesOf(model);
      if (declared?.contextLength !== undefined)
        summary.contextLength = Math.max(summary.contextLength ?? 0, declared.contextLength);
      if (declared?.embeddingDimensions !== undefined)
        summary.embeddingDimensions = Math.max(
          summary.embeddingDimensions ?? 0,
          declared.embeddingDimensions,
        );
    }
    return summary;
  }

  /** Active (not stale) instances of the model, counted up to `enough`. */
  activeCount(model: string, enough = Number.POSITIVE_INFINITY, now = this.now()): number {
    const entry = this.#models.get(model);
    if (entry === undefined) return 0;
    let active = 0;
    for (const member of entry.members) {
      if (active >= enough) break;
      const instance = this.#slots.instanceAt[member.slot];
      if (instance !== undefined && !this.isStale(instance, now)) active += 1;
    }
    return active;
  }

  /** The active (not stale) instances, of one model or of all. */
  active(model?: string): PoolInstance[] {
    const now = this.now();
    const out: PoolInstance[] = [];
    for (const instance of this.#byId.values()) {
      if (this.isStale(instance, now)) continue;
      if (model === undefined || instance.models.includes(model)) out.push(instance);
    }
    return out;
  }

  /**
   * Picks an instance for a request to `model` and leases it, or says why none can take it:
   * `unknown_model` when no registered instance serves the model, `busy` when none of them can
   * take a request now (stale, parked, cooling down, below the floor, full, excluded or below the
   * request's tier: the counts say how many of each).
   */
  lease(model: string, options: LeaseOptions = {}): LeaseResult {
    const need = options.needs === undefined ? CHAT_ONLY_MASK : needsMask(options.needs);
    for (;;) {
      const instance = this.#pick(model, options.exclude, options.admit, need);
      if (instance === undefined) return this.#panicOrNone(model, options.exclude, options.admit, need);
      const admission = instance.breaker.acquire();
      if (admission === REFUSED) {
        // The heap was behind the breaker; take the instance out and pick again.
        this.#reconcile(instance, this.now());
        continue;
      }
      this.#acquire(instance, admission);
      return new PoolLease(instance, admission, this.#finish);
    }
  }

  /** Every registered instance's routing state and link facts, sorted by id. */
  live(): InstanceView[] {
    const now = this.now();
    const out: InstanceView[] = [];
    for (const instance of this.#byId.values()) {
      const stale = this.isStale(instance, now);
      const ramp = this.rampFactor(instance, now);
      const capacity = instance.declaredCapacity * ramp;
      const inFlight = instance.inFlight;
      const spare = capacity - inFlight;
      const belowFloor = this.belowFloor(instance);
      const admits = instance.breaker.canAdmit();
      out.push({
        id: instance.id,
        nodeAddress: instance.nodeAddress,
        url: instance.url,
        models: [...instance.models],
        status: stale ? "stale" : instance.draining ? "draining" : "active",
        lastHeartbeatAt: instance.lastHeartbeatAt,
        registeredAt: instance.registeredAt,
        breaker: instance.breaker.state,
        probing: instance.breaker.probing,
        cooldownUntil: instance.breaker.cooldownUntil,
        eligible: !stale && !instance.draining && admits && !belowFloor && spare > 0,
        rampFactor: ramp,
        switchPenalty: this.switchPenalty(instance, now),
        declaredCapacity: instance.declaredCapacity,
        capacity,
        inFlight,
        spare,
        healthScore: instance.health.score(now),
        health: instance.health.counts(now),
        tokPerSec: { benchmark: instance.benchmarkTokPerSec, observed: instance.observedTokPerSec },
        belowFloor,
        backend: instance.link.backend,
        modelDigests: instance.link.models,
        lastHealth: instance.link.lastHealth,
        gpu: instance.link.gpu,
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The hot path: the top of the model's heap, after dropping what turned stale or parked. */
  #pick(
    model: string,
    exclude: readonly string[] | undefined,
    admit: ((instance: PoolInstance) => boolean) | undefined,
    need: number,
  ): PoolInstance | undefined {
    const entry = this.#models.get(model);
    if (entry === undefined) return undefined;
    const now = this.now();
    this.#processWakeups(now);
    const slots = this.#slots;
    const heap = entry.heap;
    const held = this.#held;
    let chosen: PoolInstance | undefined;
    for (;;) {
      const top = heap.peek();
      if (top === undefined) break;
      const slot = top.slot;
      const instance = slots.instanceAt[slot] as PoolInstance;
      if (now - (slots.lastHeartbeatAt[slot] as number) > this.staleAfterMs) {
        this.#evict(instance); // back with its next heartbeat
        continue;
      }
      if ((slots.blockedUntil[slot] as number) > now) {
        this.#reconcile(instance, now);
        continue;
      }
      if (
        (top.caps & need) !== need ||
        exclude?.includes(instance.id) ||
        (admit !== undefined && !admit(instance))
      ) {
        heap.remove(top);
        held.push(top);
        continue;
      }
      if ((slots.spareKey[slot] as number) > 0) chosen = instance;
      break;
    }
    while (held.length > 0) heap.insert(held.pop() as Membership);
    return chosen;
  }

  /**
   * Panic mode (as Envoy's): when every instance that could serve the request is parked or cooling
   * down, and none is merely full, failing every request helps nobody: the least loaded parked
   * instance with spare capacity takes it anyway. Its breaker is not bypassed for good: the
   * request is an ordinary admission, so it neither closes nor extends the breaker, and the probe
   * still decides. Only on the failure path; otherwise the answer explains the empty pick.
   */
  #panicOrNone(
    model: string,
    exclude: readonly string[] | undefined,
    admit: ((instance: PoolInstance) => boolean) | undefined,
    need: number,
  ): LeaseResult {
    const none = this.#noCandidate(model, exclude, admit, need);
    if (!this.#panicMode || none.counts === null || none.counts.parked === 0 || none.counts.full > 0)
      return none;
    const entry = this.#models.get(model);
    const now = this.now();
    let chosen: PoolInstance | undefined;
    let chosenLoad = Number.POSITIVE_INFINITY;
    for (const member of entry?.members ?? []) {
      const instance = this.#slots.instanceAt[member.slot];
      if (instance === undefined || this.isStale(instance, now) || exclude?.includes(instance.id)) continue;
      if (instance.draining || (member.caps & need) !== need) continue;
      if ((admit !== undefined && !admit(instance)) || this.belowFloor(instance)) continue;
      const capacity = instance.declaredCapacity * this.rampFactor(instance, now);
      const load = instance.inFlight / capacity;
      if (instance.inFlight < capacity && load < chosenLoad) {
        chosen = instance;
        chosenLoad = load;
      }
    }
    if (chosen === undefined) return none;
    this.panicLeases += 1;
    this.#acquire(chosen, ADMITTED);
    return new PoolLease(chosen, ADMITTED, this.#finish, true);
  }

  /** Explains an empty pick; only on the failure path, so it may take its time. */
  #noCandidate(
    model: string,
    exclude: readonly string[] | undefined,
    admit: ((instance: PoolInstance) => boolean) | undefined,
    need: number,
  ): NoCandidate {
    const entry = this.#models.get(model);
    if (entry === undefined) {
      return {
        lease: null,
        reason: "unknown_model",
        counts: null,
        error: new GbtError("MODEL_NOT_FOUND", `No instance serves model ${model}.`, {
          details: { model },
          hint: "Pick a model listed by GET /v1/models.",
        }),
      };
    }
    const now = this.now();
    const excluded = new Set(exclude ?? []);
    const counts: CandidateCounts = {
      instances: entry.members.length,
      stale: 0,
      excluded: 0,
      belowTier: 0,
      incapable: 0,
      parked: 0,
      belowFloor: 0,
      full: 0,
    };
    for (const member of entry.members) {
      const instance = this.#slots.instanceAt[member.slot];
      if (instance === undefined) continue;
      if (this.isStale(instance, now) || instance.draining) counts.stale += 1;
      else if ((member.caps & need) !== need) counts.incapable += 1;
      else if (excluded.has(instance.id)) counts.excluded += 1;
      else if (admit !== undefined && !admit(instance)) counts.belowTier += 1;
      else if (this.belowFloor(instance)) counts.belowFloor += 1;
      else if (!instance.breaker.canAdmit()) counts.parked += 1;
      else counts.full += 1;
    }
    const error = new GbtError(
      "BUSY",
      `No instance of model ${model} can take a request now (${counts.instances} registered: ` +
        `${counts.stale} stale, ${counts.parked} parked or cooling down, ${counts.belowFloor} below the ` +
        `${this.minTokPerSec} tok/s floor, ${counts.full} at capacity, ${counts.excluded} already tried` +
        `${counts.belowTier > 0 ? `, ${counts.belowTier} below the requested trust tier` : ""}` +
        `${counts.incapable > 0 ? `, ${counts.incapable} without a capability the request needs` : ""}).`,
      { details: { model, ...counts }, hint: "Retry shortly; capacity frees up as requests finish." },
    );
    return { lease: null, reason: "busy", counts, error };
  }

  /** Puts parked instances whose wake-up time has come back in their heaps. */
  #processWakeups(now: number): void {
    const wakeups = this.#wakeups;
    while (wakeups.next <= now) {
      const instance = wakeups.pop();
      if (instance.slot < 0 || instance.wakeAt > now) continue;
      instance.wakeAt = Number.NEGATIVE_INFINITY;
      this.#reconcile(instance, now);
    }
  }

  /** Takes an in-flight slot on a picked instance; its breaker has already admitted the request. */
  #acquire(instance: PoolInstance, admission: Admission): void {
    if (instance.slot < 0) {
      instance.adjustDetachedInFlight(1);
      return;
    }
    const now = this.now();
    this.#slots.inFlight[instance.slot] = (this.#slots.inFlight[instance.slot] ?? 0) + 1;
    this.#touch(instance, now);
    // A probe closes the half-open door behind it; ordinary admissions change nothing there.
    if (admission > 0) this.#reconcile(instance, now);
  }

  /** A lease's release: the slot back, the outcome in breaker, health and throughput. */
  #release(instance: PoolInstance, admission: Admission, outcome: CallOutcome, stats?: ReleaseStats): void {
    const now = this.now();
    const slot = instance.slot;
    if (slot < 0) instance.adjustDetachedInFlight(-1);
    else this.#slots.inFlight[slot] = (this.#slots.inFlight[slot] ?? 1) - 1;
    if (outcome === "success" || outcome === "failure" || stats?.rejected === true) {
      instance.rejections.record(stats?.rejected === true);
      // A node refusing far more than its peers loses health: its refusals count as failures.
      if (stats?.rejected === true && this.#refusesAnomalously(instance)) outcome = "failure";
    }
    instance.breaker.record(outcome, admission, stats?.retryAfterMs);
    instance.health.record(outcome, now);
    if (outcome === "success" && stats !== undefined) this.#observeThroughput(instance, stats);
    if (slot < 0) return;
    this.#slots.healthValidUntil[slot] = Number.NEGATIVE_INFINITY;
    this.#touch(instance, now);
    this.#reconcile(instance, now);
  }

  /** Whether `instance` refuses consumer requests far more often than the other instances of its models. */
  #refusesAnomalously(instance: PoolInstance): boolean {
    let rejected = 0;
    let samples = 0;
    const seen = new Set<PoolInstance>([instance]);
    for (const model of instance.models) {
      for (const member of this.#models.get(model)?.members ?? []) {
        const other = this.#slots.instanceAt[member.slot] as PoolInstance | undefined;
        if (other === undefined || seen.has(other)) continue;
        seen.add(other);
        rejected += other.rejections.rejected;
        samples += other.rejections.samples;
      }
    }
    return instance.rejections.anomalous(rejected, samples);
  }

  /**
   * Puts the instance in or takes it out of its heaps after anything that may change whether it
   * can take a request (breaker, cooldown, floor, heartbeat), and queues its wake-up if parked.
   */
  #reconcile(instance: PoolInstance, now: number): void {
    const slot = instance.slot;
    if (slot < 0) return;
    const blocked = this.belowFloor(instance) ? Number.POSITIVE_INFINITY : instance.breaker.blockedUntil();
    this.#slots.blockedUntil[slot] = blocked;
    const stale = now - (this.#slots.lastHeartbeatAt[slot] ?? 0) > this.staleAfterMs;
    if (!stale && blocked <= now && !instance.draining) {
      this.#enter(instance);
      return;
    }
    this.#evict(instance);
    if (!stale && blocked !== Number.POSITIVE_INFINITY && blocked !== instance.wakeAt) {
      instance.wakeAt = blocked;
      this.#wakeups.push(blocked, instance);
    }
  }

  /** Takes the instance out of its heaps (its next event or wake-up reconsiders it). */
  #evict(instance: PoolInstance): void {
    if (!instance.inHeaps) return;
    instance.inHeaps = false;
    for (const member of instance.memberships) member.heap.remove(member);
  }

  #enter(instance: PoolInstance): void {
    if (instance.inHeaps) return;
    instance.inHeaps = true;
    for (const member of instance.memberships) member.heap.insert(member);
  }

  /** Recomputes the heap keys of the instance (spare, health, tie) and restores heap order. */
  #touch(instance: PoolInstance, now: number): void {
    const slots = this.#slots;
    const slot = instance.slot;
    if (now >= (slots.healthValidUntil[slot] ?? 0)) {
      slots.healthScore[slot] = instance.health.score(now);
      slots.healthValidUntil[slot] = instance.health.validUntil(now);
    }
    slots.spareKey[slot] =
      instance.declaredCapacity * rampFactor(instance.registeredAt, now, this.#rampUp) -
      (slots.inFlight[slot] ?? 0);
    slots.tieKey[slot] = this.#random();
    if (instance.inHeaps) for (const member of instance.memberships) member.heap.update(member);
  }

  #observeThroughput(instance: PoolInstance, stats: ReleaseStats): void {
    const tokens = stats.outputTokens;
    const ms = stats.generationMs;
    if (tokens === undefined || ms === undefined || !(ms > 0) || !(tokens >= this.#minTokensForThroughput))
      return;
    const measured = (tokens * 1000) / ms;
    if (!Number.isFinite(measured)) return;
    const previous = instance.observedTokPerSec;
    const next = previous === null ? measured : previous + this.#throughputSmoothing * (measured - previous);
    if (instance.slot < 0) instance.setDetachedObserved(next);
    else this.#slots.observedTokPerSec[instance.slot] = next;
  }

  #setModels(instance: PoolInstance, models: readonly string[], now: number): void {
    if (sameModels(instance.models, models)) return;
    const wasIn = instance.inHeaps;
    this.#leave(instance);
    instance.models = [...new Set(models)];
    this.#join(instance);
    if (wasIn) this.#enter(instance);
    instance.modelSwitchedAt = now;
  }

  /** Creates the instance's memberships in the heaps of its models (outside the heaps). */
  #join(instance: PoolInstance): void {
    instance.memberships = instance.models.map((model) => {
      let entry = this.#models.get(model);
      if (entry === undefined) {
        entry = new ModelHeap(new CandidateHeap(this.#slots));
        this.#models.set(model, entry);
      }
      const member = new Membership(instance.slot, entry.heap);
      member.caps = instance.capabilityMaskOf(model);
      entry.members.push(member);
      return member;
    });
  }

  #leave(instance: PoolInstance): void {
    this.#evict(instance);
    for (const model of instance.models) {
      const entry = this.#models.get(model);
      if (entry === undefined) continue;
      const at = entry.members.findIndex((m) => m.slot === instance.slot);
      if (at >= 0) {
        entry.members[at] = entry.members[entry.members.length - 1] as Membership;
        entry.members.pop();
      }
      if (entry.members.length === 0) this.#models.delete(model);
    }
    instance.memberships = [];
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
