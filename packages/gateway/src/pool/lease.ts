/**
 * What `InstancePool.lease` hands out: a lease on one instance (one in-flight slot, released
 * exactly once with how the request ended) and its link, or a typed "no candidate" answer that
 * counts why every instance of the model was passed over (the 503's message shows those counts).
 */

import type { GbtError } from "@gbt/protocol";
import type { Capability } from "./capabilities.js";
import type { Admission, CallOutcome } from "./circuit-breaker.js";
import type { InstanceLink, PoolInstance } from "./pool-instance.js";

/** Facts about a finished request that feed the observed throughput and the cooldown. */
export interface ReleaseStats {
  /** Tokens generated. */
  outputTokens?: number;
  /** Time spent generating them (first to last token), in ms. */
  generationMs?: number;
  /** With outcome "cooldown": the node's Retry-After, in ms. */
  retryAfterMs?: number;
  /**
   * With outcome "neutral": the node refused the consumer's request (a 4xx). Neutral, unless the
   * node refuses far more often than the other nodes of its models (see RejectionWindow).
   */
  rejected?: boolean;
}

export interface LeaseOptions {
  /** Instance ids not to pick, e.g. the ones a request already failed on before its first byte. */
  exclude?: readonly string[];
  /**
   * Instances this request may use at all (e.g. a minimum trust tier); the others are held out
   * like excluded ones and counted as `belowTier` when nothing is left.
   */
  admit?: (instance: PoolInstance) => boolean;
  /** What the request needs of the instance's model (pool/capabilities.ts); absent: chat. */
  needs?: readonly Capability[];
}

/** One routed request's hold on an instance. Release it exactly once, whatever happens. */
export interface Lease {
  readonly instance: PoolInstance;
  /** Whether this request is the single probe of a half-open breaker. */
  readonly probe: boolean;
  /** Whether it went to a parked instance because every instance of the model was parked (panic mode). */
  readonly panic: boolean;
  readonly released: boolean;
  /**
   * Gives the in-flight slot back and records how the request ended: "success", "failure"
   * (connection error, 5xx, timeout, stalled stream), "neutral" (consumer 4xx or cancellation) or
   * "cooldown" (the node's 429, with `stats.retryAfterMs`). Returns false if already released.
   */
  release(outcome: CallOutcome, stats?: ReleaseStats): boolean;
}

/** Why each instance of a model could not take the request. */
export interface CandidateCounts {
  instances: number;
  stale: number;
  excluded: number;
  belowTier: number;
  /** Instances whose model lacks a capability the request needs (capabilities.ts). */
  incapable: number;
  parked: number;
  belowFloor: number;
  full: number;
}

export interface Leased {
  readonly lease: Lease;
  readonly link: InstanceLink;
}

/** No instance can take the request: none serves the model, or every one that does was passed over. */
export type NoCandidate =
  | {
      readonly lease: null;
      readonly reason: "unknown_model";
      readonly counts: null;
      readonly error: GbtError;
    }
  | {
      readonly lease: null;
      readonly reason: "busy";
      readonly counts: CandidateCounts;
      /** BUSY, with the counts in its message and details. */
      readonly error: GbtError;
    };

export type LeaseResult = Leased | NoCandidate;

/** Finishes a lease in the pool that handed it out. */
export type FinishLease = (
  instance: PoolInstance,
  admission: Admission,
  outcome: CallOutcome,
  stats: ReleaseStats | undefined,
) => void;

export class PoolLease implements Lease, Leased {
  readonly instance: PoolInstance;
  readonly panic: boolean;
  readonly #admission: Admission;
  readonly #finish: FinishLease;
  #released = false;

  constructor(instance: PoolInstance, admission: Admission, finish: FinishLease, panic = false) {
    this.instance = instance;
    this.#admission = admission;
    this.#finish = finish;
    this.panic = panic;
  }

  /** The lease is its own `Leased` answer: one allocation per pick. */
  get lease(): Lease {
    return this;
  }

  get link(): InstanceLink {
    return this.instance.link;
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
    this.#finish(this.instance, this.#admission, outcome, stats);
    return true;
  }
}
