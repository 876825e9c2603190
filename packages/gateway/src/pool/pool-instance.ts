/**
 * One serving instance of the pool, as one record: what the node declared (models, capacity,
 * benchmark), its routing state (breaker, health, and the live numbers kept in the pool's slot
 * table), and its link (URL, link token, reported models and backend, last health) that the proxy,
 * verification and the job relay use to reach it.
 */
import type { ModelCapabilitiesDetails, NodeGpu } from "@gbt/protocol";
import type { Address } from "viem";
import type { Membership } from "./candidate-heap.js";
import { capabilityMask } from "./capabilities.js";
import { CircuitBreaker, type ResolvedBreakerOptions } from "./circuit-breaker.js";
import { HealthWindow, type ResolvedHealthWindowOptions } from "./health-score.js";
import { type NodeChannel, NodeTransport } from "./node-transport.js";
import type { SlotTable } from "./slot-table.js";

/** How the gateway reaches an instance and what the node reported about itself. */
export interface InstanceLink {
  instanceId: string;
  node: Address;
  url: string;
  /** `Bearer <link token>`, precomputed; empty for an instance registered without a link. */
  authorization: string;
  /** How the node is reached: every request to it goes through this (its URL policy, its agents). */
  transport: NodeChannel;
  /** The models as the node reported them, with their digests and signed capabilities. */
  models: readonly {
    id: string;
    digest?: string | undefined;
    capabilities?: ModelCapabilitiesDetails | undefined;
  }[];
  /** The backend the node reported; null when it registered without one. */
  backend: { kind: string; version?: string | undefined } | null;
  /** Who may sign the node's jobs, as its last signed registration or heartbeat said: the relay carries only their jobs. */
  owners: readonly Address[];
  /** The health of its last heartbeat. */
  lastHealth: { ok: boolean; detail?: string | undefined } | null;
  /** The GPU its signed benchmark ran on; null without one. */
  gpu: NodeGpu | null;
}

/** What an instance declares when it registers (already signature-checked and parsed upstream). */
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
  /** The owners its signed registration names (default none: the relay carries it no job). */
  owners?: readonly Address[];
  /** The link a signed registration opens (link token, reported models, backend); absent in routing-only use. */
  link?: Pick<InstanceLink, "authorization" | "models" | "backend" | "transport"> & { gpu?: NodeGpu | null };
}

export class PoolInstance {
  readonly id: string;
  nodeAddress: string;
  /** The models routed to it (the admitted ones among those it serves). */
  models: readonly string[];
  declaredCapacity: number;
  readonly registeredAt: number;
  benchmarkTokPerSec: number | null;
  /** It declared capacity 0 in its last heartbeat (outside its schedule): routed nothing until it offers again. */
  draining = false;
  /** When the served models last changed (null: never), for the anti-flapping multiplier. */
  modelSwitchedAt: number | null = null;
  readonly breaker: CircuitBreaker;
  readonly health: HealthWindow;
  /** How often it refused consumer requests (4xx) lately, against what it answered. */
  readonly rejections = new RejectionWindow();
  /** Replaced (not mutated) when the node registers again, so per-link caches follow it. */
  link: InstanceLink;

  // The pool's bookkeeping; only pool/ reads these.
  /** Index into the pool's slot table; −1 once removed. */
  slot: number;
  /** Its entries in the heaps of the models it serves. */
  memberships: Membership[] = [];
  /** Whether its memberships are in their heaps (it may take a request). */
  inHeaps = false;
  /** The wake-up time queued for it while parked (−∞ when none). */
  wakeAt = Number.NEGATIVE_INFINITY;

  readonly #slots: SlotTable;
  /** The live numbers, kept here once the instance is removed so outstanding leases still finish. */
  #detached = { inFlight: 0, lastHeartbeatAt: 0, observedTokPerSec: Number.NaN };

  constructor(
    slots: SlotTable,
    slot: number,
    init: InstanceRegistration,
    registeredAt: number,
    options: { breaker: ResolvedBreakerOptions; health: ResolvedHealthWindowOptions; now: () => number },
  ) {
    this.#slots = slots;
    this.slot = slot;
    this.id = init.id;
    this.nodeAddress = init.nodeAddress;
    this.models = [...init.models];
    this.declaredCapacity = init.declaredCapacity;
    this.registeredAt = registeredAt;
    this.benchmarkTokPerSec = init.benchmarkTokPerSec ?? null;
    this.breaker = new CircuitBreaker(options.breaker, options.now);
    this.health = new HealthWindow(options.health);
    this.link = linkOf(init, null);
  }

  get url(): string {
    return this.link.url;
  }

  /** What it can do with `model`, as a capabilities.ts mask (chat only when its registration said nothing). */
  capabilityMaskOf(model: string): number {
    return capabilityMask(this.capabilitiesOf(model));
  }

  /** Its signed capabilities for `model`, when its registration gave them. */
  capabilitiesOf(model: string): ModelCapabilitiesDetails | undefined {
    for (const entry of this.link.models) if (entry.id === model) return entry.capabilities;
    return undefined;
  }

  get inFlight(): number {
    return this.slot < 0 ? this.#detached.inFlight : (this.#slots.inFlight[this.slot] ?? 0);
  }

  get lastHeartbeatAt(): number {
    return this.slot < 0 ? this.#detached.lastHeartbeatAt : (this.#slots.lastHeartbeatAt[this.slot] ?? 0);
  }

  /** Moving average of measured decode throughput, null until measured. */
  get observedTokPerSec(): number | null {
    const value =
      this.slot < 0
        ? this.#detached.observedTokPerSec
        : (this.#slots.observedTokPerSec[this.slot] ?? Number.NaN);
    return Number.isNaN(value) ? null : value;
  }

  /** The throughput the floor is checked against: observed when known, else the benchmark. */
  get tokPerSec(): number | null {
    return this.observedTokPerSec ?? this.benchmarkTokPerSec;
  }

  /** Called by the pool when the instance is removed: the live numbers move in here. */
  detach(): void {
    const slots = this.#slots;
    const slot = this.slot;
    this.#detached = {
      inFlight: slots.inFlight[slot] ?? 0,
      lastHeartbeatAt: slots.lastHeartbeatAt[slot] ?? 0,
      observedTokPerSec: slots.observedTokPerSec[slot] ?? Number.NaN,
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

/** The link of a (re-)registration: a new link replaces the old; without one, the old is kept (its URL updated). */
export function linkOf(registration: InstanceRegistration, previous: InstanceLink | null): InstanceLink {
  const url = registration.url;
  if (registration.link === undefined && previous !== null) {
    return previous.url === url ? previous : { ...previous, url };
  }
  return {
    instanceId: registration.id,
    node: registration.nodeAddress as Address,
    url,
    authorization: registration.link?.authorization ?? "",
    transport: registration.link?.transport ?? strictTransport(),
    models: registration.link?.models ?? [],
    backend: registration.link?.backend ?? null,
    owners: registration.owners ?? [],
    lastHealth: null,
    gpu: registration.link?.gpu ?? null,
  };
}

let strict: NodeTransport | undefined;
/** The transport of an instance registered without one (routing-only use): the default policy, no private addresses. */
function strictTransport(): NodeTransport {
  strict ??= new NodeTransport({ allowPrivate: false });
  return strict;
}

/**
 * The last 64 answers of an instance to consumer requests: refused (4xx) or answered. A consumer's
 * bad input is refused by every node alike, so a 4xx is neutral; a node refusing far more than
 * the other nodes of its models is itself the problem (a black hole that wins picks and answers
 * 400), and the pool counts its refusals as failures (`anomalous`).
 */
export class RejectionWindow {
  static readonly SIZE = 64;
  /** Samples before a rate means anything, on either side of the comparison. */
  static readonly MIN_SAMPLES = 20;
  readonly #ring = new Uint8Array(RejectionWindow.SIZE);
  #next = 0;
  samples = 0;
  rejected = 0;

  record(rejected: boolean): void {
    const at = this.#next;
    if (this.samples === RejectionWindow.SIZE) this.rejected -= this.#ring[at] as number;
    else this.samples += 1;
    this.#ring[at] = rejected ? 1 : 0;
    if (rejected) this.rejected += 1;
    this.#next = (at + 1) % RejectionWindow.SIZE;
  }

  /** Whether this rate is far above the others' (`rejected` of `samples` among the model's other nodes). */
  anomalous(othersRejected: number, othersSamples: number): boolean {
    if (this.samples < RejectionWindow.MIN_SAMPLES || othersSamples < RejectionWindow.MIN_SAMPLES)
      return false;
    const mine = this.rejected / this.samples;
    const theirs = othersRejected / othersSamples;
    return mine >= 0.5 && mine >= 3 * theirs + 0.1;
  }
}
