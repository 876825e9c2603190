/**
 * The live numbers of the pool's instances, one slot per instance, in typed arrays: the routing
 * pick reads them for thousands of instances without chasing an object per instance. Only the
 * pool and its records hold a reference to the table (in private fields), so nothing outside
 * pool/ reads or writes a slot. Grown by doubling; a freed slot is reused.
 */
import type { CandidateKeys } from "./candidate-heap.js";
import type { PoolInstance } from "./pool-instance.js";

const INITIAL_SLOTS = 1024;

export class SlotTable implements CandidateKeys {
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
  /** The record in each slot (undefined once freed). */
  instanceAt: (PoolInstance | undefined)[] = [];

  readonly #free: number[] = [];
  #count = 0;

  /** A slot for a new instance (a freed one first), growing the arrays when full. */
  allocate(): number {
    if (this.#count === this.capacity.length && this.#free.length === 0) this.#grow(this.capacity.length * 2);
    return this.#free.pop() ?? this.#count++;
  }

  free(slot: number): void {
    this.instanceAt[slot] = undefined;
    this.#free.push(slot);
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
