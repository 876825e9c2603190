/**
 * What verification's jobs share once it has started: its ports, the evidence store, the trust
 * views, the random source and clock of its checks, the sampling log, and the bookkeeping of
 * challenges (which ran when, which node is being challenged now). Every outcome is recorded here
 * (`record`): objective fraud becomes an evidence record (with a slashing proposal), and the
 * instance's cached trust view is dropped. After `close` no job writes any more.
 */
import { GbtError } from "@gbt/protocol";
import type { InstanceLink, PoolInstance } from "../pool/pool-instance.js";
import { runCanary } from "./canary-check.js";
import { type ChallengeKindRun, type ChallengeResult, skipped } from "./challenge-result.js";
import {
  type ChallengeOutcome,
  type ChallengeRecord,
  type EvidenceKind,
  EvidenceStore,
} from "./evidence-store.js";
import type { SampleComparison } from "./sampling.js";
import { runThroughputCheck } from "./throughput-check.js";
import { TrustViews } from "./trust-views.js";
import type { VerificationPorts } from "./verification.js";

export class Verifier {
  readonly store: EvidenceStore;
  readonly views: TrustViews;
  /** When each instance last had each kind of challenge (the scheduler's due dates). */
  readonly lastRun = new Map<string, { canary: number; benchmark: number }>();
  readonly #busy = new Set<string>();
  #closed = false;

  constructor(
    readonly ports: VerificationPorts,
    /** Uniform [0, 1): sampling, canary choice, measurement order. */
    readonly random: () => number,
    /** Monotonic ms clock for throughput timing. */
    readonly elapsed: () => number,
    /** Sampling comparisons so far, newest last. */
    readonly comparisons: SampleComparison[],
    /** Registers background work, so that close and `idle` can wait for it. */
    readonly track: <T>(promise: Promise<T>) => Promise<T>,
  ) {
    this.store = new EvidenceStore(ports.db, ports.now);
    this.views = new TrustViews(ports.config, this.store, ports.pool, ports.now);
  }

  get config() {
    return this.ports.config;
  }

  /** Work that outlives close() stops at its next write: the database is about to close. */
  assertOpen(): void {
    if (this.#closed)
      throw new GbtError("INTERRUPTED", "The gateway is shutting down; verification stopped.");
  }

  close(): void {
    this.#closed = true;
  }

  /** The registered instance and its link; NOT_FOUND otherwise. */
  instance(instanceId: string): { instance: PoolInstance; link: InstanceLink } {
    const instance = this.ports.pool.get(instanceId.toLowerCase());
    if (instance === undefined) {
      throw new GbtError("NOT_FOUND", `No node ${instanceId} is registered with this gateway.`, {
        details: { instance: instanceId },
        hint: "List the pool with `gbt gateway nodes`.",
      });
    }
    return { instance, link: instance.link };
  }

  /** Stores one challenge outcome (and its evidence, for fraud) and drops the cached view. */
  record(
    instance: PoolInstance,
    kind: ChallengeRecord["kind"],
    outcome: ChallengeOutcome,
    details: Record<string, unknown>,
    evidence?: { kind: EvidenceKind; summary: string },
  ): ChallengeRecord {
    this.assertOpen();
    const record = evidence
      ? this.store.addEvidence({
          instanceId: instance.id,
          node: instance.nodeAddress,
          kind: evidence.kind,
          summary: evidence.summary,
          details: { challenge: kind, ...details },
        })
      : null;
    if (record !== null) {
      this.ports.logger.warn(
        { node: instance.nodeAddress, evidence: record.id, kind: record.kind, severity: record.severity },
        "verification evidence recorded",
      );
    }
    this.views.forget(instance.id);
    return this.store.recordChallenge({
      instanceId: instance.id,
      node: instance.nodeAddress,
      kind,
      outcome,
      details,
      evidenceId: record?.id ?? null,
    });
  }

  /** Challenges one instance now; one challenge of a node at a time (the others are skipped). */
  async challenge(
    instanceId: string,
    kinds: readonly ChallengeKindRun[] = ["canary", "benchmark"],
  ): Promise<ChallengeResult[]> {
    const { instance, link } = this.instance(instanceId);
    const key = instance.id;
    const results: ChallengeResult[] = [];
    if (this.#busy.has(key)) {
      return kinds.map((kind) => skipped(kind, "a challenge of this node is already running"));
    }
    this.#busy.add(key);
    try {
      const last = this.lastRun.get(key) ?? {
        canary: Number.NEGATIVE_INFINITY,
        benchmark: Number.NEGATIVE_INFINITY,
      };
      for (const kind of kinds) {
        last[kind] = this.ports.now();
        results.push(
          kind === "canary"
            ? await runCanary(this, instance, link)
            : await runThroughputCheck(this, instance, link),
        );
      }
      this.lastRun.set(key, last);
    } finally {
      this.#busy.delete(key);
    }
    return results;
  }
}
