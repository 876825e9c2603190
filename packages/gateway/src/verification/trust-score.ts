/**
 * Reputation and tier of one instance, computed from evidence only (pure: the caller passes the
 * clock, the health window's score and the stored history).
 *
 * Reputation. With each challenge outcome weighted w = 2^(−age / halfLife), P = Σ w over passes
 * and F = Σ w · weight over failures (weight 1 for a soft failure, 5 when the failure produced
 * fraud evidence), the challenge score is (P + 2 · 0.5) / (P + F + 2): a neutral prior of two
 * pseudo-challenges that the node's own record soon outweighs. Reputation is the mean of that
 * and the 14-day health score (routed requests: success / failure, probes included). Evidence
 * found outside a challenge (a consumer receipt claiming undelivered tokens) counts as a failure
 * of the same weight. Errors (timeouts, 429s) are neutral, as in the health window.
 *
 * Tier. `verified` needs every claim checked: a reported runtime version, a digest for every
 * model served, the latest canary passed within `verifiedTtl`, and no fraud evidence in the
 * window, and a backend that can show which hardware serves it (a cloud-account node never can:
 * trust-tier.ts). Otherwise `community`. `attested` is never given: it needs confidential-compute
 * evidence, and none exists here.
 */

import type { TrustTier } from "@gbt/protocol";
import { unverifiableBackendReason } from "../trust-tier.js";
import type { ChallengeRecord, EvidenceRecord } from "./evidence-store.js";

export interface TrustInput {
  now: number;
  /** The routing health score (0..1, 0.5 without history). */
  healthScore: number;
  /** Challenges inside the window, oldest first. */
  challenges: readonly ChallengeRecord[];
  /** Evidence inside the window. */
  evidence: readonly EvidenceRecord[];
  /** The runtime version the node reported (registration backend.version). */
  runtimeVersion: string | null;
  /** The backend kind the node reported (registration backend.kind); `cloud` is never verified. */
  backendKind: string | null;
  /** Models with the digests the node reported. */
  models: readonly { id: string; digest?: string | undefined }[];
  benchmarkTokPerSec: number | null;
  halfLifeMs: number;
  verifiedTtlMs: number;
}

export interface TrustView {
  tier: TrustTier;
  /** 0..1, three decimals. */
  reputation: number;
  /**
   * Payout multiplier earned by the reputation: 1 at or above the neutral 0.5, falling linearly to
   * 0.5 at reputation 0. Soft failures cost money this way, never stake.
   */
  payoutFactor: number;
  /** Why the tier is what it is (each unmet requirement of the next tier). */
  reasons: string[];
  /** Evidence ids in the window, newest first. */
  evidence: string[];
  fraud: number;
  challenges: {
    passed: number;
    failed: number;
    errors: number;
    lastCanary: { outcome: string; at: number } | null;
    lastBenchmark: { outcome: string; at: number; measuredTokPerSec: number | null } | null;
  };
  benchmarked: boolean;
}

const FRAUD_WEIGHT = 5;
const PRIOR_WEIGHT = 2;

export function trustOf(input: TrustInput): TrustView {
  const fraudIds = new Set(input.evidence.filter((e) => e.severity === "fraud").map((e) => e.id));
  let passes = 0;
  let failures = 0;
  const counts = { passed: 0, failed: 0, errors: 0 };
  let lastCanary: ChallengeRecord | null = null;
  let lastBenchmark: ChallengeRecord | null = null;
  for (const challenge of input.challenges) {
    const age = Math.max(0, input.now - challenge.at);
    const weight = 2 ** (-age / input.halfLifeMs);
    if (challenge.outcome === "pass") {
      passes += weight;
      counts.passed += 1;
    } else if (challenge.outcome === "fail") {
      const fraud = challenge.evidenceId !== null && fraudIds.has(challenge.evidenceId);
      failures += weight * (fraud ? FRAUD_WEIGHT : 1);
      counts.failed += 1;
    } else {
      counts.errors += 1;
    }
    if (challenge.outcome !== "error") {
      if (challenge.kind === "canary") lastCanary = challenge;
      if (challenge.kind === "benchmark") lastBenchmark = challenge;
    }
  }
  // Evidence found outside a challenge (e.g. a consumer receipt claiming undelivered tokens) counts as a failure too.
  const linked = new Set(input.challenges.map((c) => c.evidenceId).filter((id) => id !== null));
  for (const evidence of input.evidence) {
    if (linked.has(evidence.id)) continue;
    const weight = 2 ** (-Math.max(0, input.now - evidence.at) / input.halfLifeMs);
    failures += weight * (evidence.severity === "fraud" ? FRAUD_WEIGHT : 1);
  }
  const challengeScore = (passes + PRIOR_WEIGHT * 0.5) / (passes + failures + PRIOR_WEIGHT);
  const reputation = Math.round(((challengeScore + input.healthScore) / 2) * 1000) / 1000;

  const reasons: string[] = [];
  const unverifiable = unverifiableBackendReason(input.backendKind);
  if (unverifiable !== undefined) reasons.push(unverifiable);
  if (input.runtimeVersion === null) reasons.push("the node reports no runtime version");
  const undigested = input.models.filter((m) => m.digest === undefined).map((m) => m.id);
  if (undigested.length > 0) reasons.push(`no model digest reported for ${undigested.join(", ")}`);
  if (lastCanary === null) reasons.push("no canary answered yet");
  else if (lastCanary.outcome !== "pass") reasons.push("the latest canary failed");
  else if (input.now - lastCanary.at > input.verifiedTtlMs)
    reasons.push("the latest passed canary is too old");
  if (fraudIds.size > 0) reasons.push(`${fraudIds.size} fraud evidence record(s) in the window`);
  const tier: TrustTier = reasons.length === 0 ? "verified" : "community";
  reasons.push("attested needs confidential-compute evidence (none)");

  const measured = lastBenchmark?.details.measuredTokPerSec;
  return {
    tier,
    reputation,
    payoutFactor: reputation >= 0.5 ? 1 : Math.round((0.5 + reputation) * 1000) / 1000,
    reasons,
    evidence: [...input.evidence].sort((a, b) => b.at - a.at).map((e) => e.id),
    fraud: fraudIds.size,
    challenges: {
      ...counts,
      lastCanary: lastCanary ? { outcome: lastCanary.outcome, at: lastCanary.at } : null,
      lastBenchmark: lastBenchmark
        ? {
            outcome: lastBenchmark.outcome,
            at: lastBenchmark.at,
            measuredTokPerSec: typeof measured === "number" ? measured : null,
          }
        : null,
    },
    benchmarked: input.benchmarkTokPerSec !== null,
  };
}
