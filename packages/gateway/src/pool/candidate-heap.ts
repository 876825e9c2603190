/**
 * The indexed priority queues behind the pool's O(log n) pick.
 *
 * - `CandidateHeap`: per model, a binary max-heap of the instances that may take a request,
 *   ordered by (spare desc, health score desc, random tie key desc). The keys live in the
 *   pool's slot table (typed arrays), indexed by slot; each heap entry is a `Membership` (one
 *   instance in one model's heap) that remembers its position, so an instance whose load
 *   changes is moved in place instead of searched for. The random tie key is redrawn whenever an instance's key
 *   changes, which makes the top of a set of equal instances a uniform random one of them.
 * - `WakeupQueue`: a min-heap of times at which a parked instance (breaker open, probe out,
 *   429 cooldown) must be looked at again.
 */
import { CHAT_ONLY_MASK } from "./capabilities.js";

/** Where the heap reads its keys (the pool's slot table; its arrays may be reallocated on growth). */
export interface CandidateKeys {
  spareKey: Float64Array;
  healthScore: Float64Array;
  tieKey: Float64Array;
}

/** One instance's entry in one model's heap. */
export class Membership {
  readonly slot: number;
  readonly heap: CandidateHeap;
  /** Position in the heap's array; −1 while out of the heap. */
  pos = -1;
  /** What the instance can do with this model (a capabilities.ts mask): the pick tests a request's needs here. */
  caps = CHAT_ONLY_MASK;

  constructor(slot: number, heap: CandidateHeap) {
    this.slot = slot;
    this.heap = heap;
  }
}

export class CandidateHeap {
  readonly #keys: CandidateKeys;
  readonly #items: Membership[] = [];

  constructor(keys: CandidateKeys) {
    this.#keys = keys;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): Membership | undefined {
    return this.#items[0];
  }

  insert(member: Membership): void {
    if (member.pos >= 0) return;
    member.pos = this.#items.length;
    this.#items.push(member);
    this.#siftUp(member.pos);
  }

  remove(member: Membership): void {
    const pos = member.pos;
    if (pos < 0) return;
    const last = this.#items.pop() as Membership;
    member.pos = -1;
    if (last === member) return;
    this.#items[pos] = last;
    last.pos = pos;
    this.#siftUp(pos);
    this.#siftDown(last.pos);
  }

  /** Restores the order after the member's keys changed. */
  update(member: Membership): void {
    if (member.pos < 0) return;
    this.#siftUp(member.pos);
    this.#siftDown(member.pos);
  }

  /** Whether the entry at slot a ranks before the one at slot b. */
  #before(a: number, b: number): boolean {
    const keys = this.#keys;
    const spareA = keys.spareKey[a] as number;
    const spareB = keys.spareKey[b] as number;
    if (spareA !== spareB) return spareA > spareB;
    const healthA = keys.healthScore[a] as number;
    const healthB = keys.healthScore[b] as number;
    if (healthA !== healthB) return healthA > healthB;
    return (keys.tieKey[a] as number) > (keys.tieKey[b] as number);
  }

  #siftUp(start: number): void {
    const items = this.#items;
    const member = items[start] as Membership;
    let pos = start;
    while (pos > 0) {
      const parentPos = (pos - 1) >> 1;
      const parent = items[parentPos] as Membership;
      if (!this.#before(member.slot, parent.slot)) break;
      items[pos] = parent;
      parent.pos = pos;
      pos = parentPos;
    }
    items[pos] = member;
    member.pos = pos;
  }

  #siftDown(start: number): void {
    const items = this.#items;
    const n = items.length;
    const member = items[start] as Membership;
    let pos = start;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.#before((items[right] as Membership).slot, (items[left] as Membership).slot)) {
        child = right;
      }
      const childMember = items[child] as Membership;
      if (!this.#before(childMember.slot, member.slot)) break;
      items[pos] = childMember;
      childMember.pos = pos;
      pos = child;
    }
    items[pos] = member;
    member.pos = pos;
  }
}

/** A min-heap of (time, item); entries are never removed early, the consumer skips outdated ones. */
export class WakeupQueue<T> {
  readonly #times: number[] = [];
  readonly #items: T[] = [];

  get size(): number {
    return this.#times.length;
  }

  /** The earliest time queued, +∞ when empty. */
  get next(): number {
    return this.#times[0] ?? Number.POSITIVE_INFINITY;
  }

  push(at: number, item: T): void {
    const times = this.#times;
    const items = this.#items;
    let pos = times.length;
    times.push(at);
    items.push(item);
    while (pos > 0) {
      const parent = (pos - 1) >> 1;
      if ((times[parent] as number) <= at) break;
      times[pos] = times[parent] as number;
      items[pos] = items[parent] as T;
      pos = parent;
    }
    times[pos] = at;
    items[pos] = item;
  }

  /** Removes and returns the earliest item (call only when `size > 0`). */
  pop(): T {
    const times = this.#times;
    const items = this.#items;
    const top = items[0] as T;
    const lastTime = times.pop() as number;
    const lastItem = items.pop() as T;
    const n = times.length;
    if (n === 0) return top;
    let pos = 0;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && (times[right] as number) < (times[left] as number) ? right : left;
      if ((times[child] as number) >= lastTime) break;
      times[pos] = times[child] as number;
      items[pos] = items[child] as T;
      pos = child;
    }
    times[pos] = lastTime;
    items[pos] = lastItem;
    return top;
  }
}
