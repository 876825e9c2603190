/**
 * Each instance's trust view (tier, reputation, payout factor; trust-score.ts) from its stored
 * challenges and evidence in the window and its routing health. Routing and payouts read it on
 * every request and receipt, so those reads are cached (`VIEW_CACHE_MS`, lru-cache on the
 * gateway's clock); new evidence or a challenge outcome drops an instance's entry at once. People
 * and challenges read fresh views.
 */
import type { TrustTier } from "@gbt/protocol";
import { LRUCache } from "lru-cache";
import type { InstancePool } from "../pool/instance-pool.js";
import type { EvidenceStore } from "./evidence-store.js";
import { type TrustView, trustOf } from "./trust-score.js";
import type { VerificationConfig } from "./verification-config.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** How long a view read for routing or payouts is reused. */
const VIEW_CACHE_MS = 5_000;
/** Views kept at most (one per instance; the least recently read go first). */
const MAX_CACHED_VIEWS = 100_000;

export class TrustViews {
  readonly #cache: LRUCache<string, { view: TrustView | null }>;

  constructor(
    private readonly config: VerificationConfig,
    private readonly store: EvidenceStore,
    private readonly pool: Pick<InstancePool, "get">,
    private readonly now: () => number,
  ) {
    this.#cache = new LRUCache({
      max: MAX_CACHED_VIEWS,
      ttl: VIEW_CACHE_MS,
      perf: { now },
      ttlResolution: 0,
    });
  }

  /** The tier routing uses (cached). */
  tierOf(instanceId: string): TrustTier {
    return this.cached(instanceId)?.tier ?? "community";
  }

  /** `view`, cached for the hot paths (routing, settlement). */
  cached(instanceId: string): TrustView | null {
    const hit = this.#cache.get(instanceId);
    if (hit !== undefined) return hit.view;
    const view = this.view(instanceId);
    this.#cache.set(instanceId, { view });
    return view;
  }

  /** Drops the cached view after something changed it. */
  forget(instanceId: string): void {
    this.#cache.delete(instanceId);
  }

  /** The view as of now; null for an instance not registered here. */
  view(instanceId: string): TrustView | null {
    const id = instanceId.toLowerCase();
    const instance = this.pool.get(id);
    if (instance === undefined) return null;
    const link = instance.link;
    const now = this.now();
    const since = now - this.config.windowDays * DAY_MS;
    return trustOf({
      now,
      healthScore: instance.health.score(now),
      challenges: this.store.challenges(id, since),
      evidence: this.store.listEvidence({ instanceId: id, since }),
      runtimeVersion: link.backend?.version ?? null,
      backendKind: link.backend?.kind ?? null,
      models: link.models.filter((m) => instance.models.includes(m.id)),
      benchmarkTokPerSec: instance.benchmarkTokPerSec,
      halfLifeMs: this.config.reputationHalfLifeDays * DAY_MS,
      verifiedTtlMs: this.config.verifiedTtlHours * HOUR_MS,
    });
  }
}
