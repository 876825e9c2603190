/** What one challenge of one node came to, as the admin route and the timer report it. */
import { createHash } from "node:crypto";
import type { ChallengeOutcome, ChallengeRecord, EvidenceKind } from "./evidence-store.js";

export type ChallengeKindRun = "canary" | "benchmark";

export interface ChallengeResult {
  kind: ChallengeKindRun;
  outcome: ChallengeOutcome | "skipped";
  reason: string;
  challengeId: number | null;
  evidenceId: string | null;
  details: Record<string, unknown>;
}

/** Objective fraud found in a challenge: becomes an evidence record with a slashing proposal. */
export interface Finding {
  kind: EvidenceKind;
  summary: string;
  details: Record<string, unknown>;
}

export function skipped(kind: ChallengeKindRun, reason: string): ChallengeResult {
  return { kind, outcome: "skipped", reason, challengeId: null, evidenceId: null, details: {} };
}

export function resultOf(kind: ChallengeKindRun, record: ChallengeRecord, reason: string): ChallengeResult {
  return {
    kind,
    outcome: record.outcome,
    reason,
    challengeId: record.id,
    evidenceId: record.evidenceId,
    details: record.details,
  };
}

/** The hex sha256 of an answer, recorded instead of the answer itself. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
