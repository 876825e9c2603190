import { describe, expect, it } from "vitest";
import type { ChallengeRecord, EvidenceRecord } from "./evidence-store.js";
import { type TrustInput, trustOf } from "./trust-score.js";

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;

const challenge = (
  kind: ChallengeRecord["kind"],
  outcome: ChallengeRecord["outcome"],
  at: number,
  evidenceId: string | null = null,
): ChallengeRecord => ({ id: 0, instanceId: "n", node: "0x", kind, outcome, details: {}, evidenceId, at });

const fraud = (id: string, at: number): EvidenceRecord => ({
  id,
  hash: "0x00",
  instanceId: "n",
  node: "0x",
  kind: "benchmark_spoofed",
  severity: "fraud",
  summary: "",
  details: {},
  at,
  slashingProposal: null,
});

const input = (overrides: Partial<TrustInput> = {}): TrustInput => ({
  now: NOW,
  healthScore: 0.5,
  challenges: [],
  evidence: [],
  runtimeVersion: "1.0.0",
  backendKind: "embedded",
  models: [{ id: "m", digest: "sha256:aa" }],
  benchmarkTokPerSec: 50,
  halfLifeMs: 7 * DAY,
  verifiedTtlMs: DAY,
  ...overrides,
});

describe("trustOf", () => {
  it("starts a node without history at a neutral 0.5, community", () => {
    expect(trustOf(input())).toMatchObject({ tier: "community", reputation: 0.5, evidence: [] });
  });

  it("gives verified only when every claim is checked, and never attested", () => {
    const passed = [challenge("canary", "pass", NOW - 1000)];
    expect(trustOf(input({ challenges: passed })).tier).toBe("verified");
    expect(trustOf(input({ challenges: passed, runtimeVersion: null })).tier).toBe("community");
    expect(trustOf(input({ challenges: passed, models: [{ id: "m" }] })).tier).toBe("community");
    expect(trustOf(input({ challenges: [challenge("canary", "pass", NOW - 2 * DAY)] })).tier).toBe(
      "community",
    );
    expect(
      trustOf(input({ challenges: [...passed, challenge("canary", "fail", NOW - 500)] })).reasons,
    ).toContain("the latest canary failed");
    // A later error (no verdict) does not undo a pass.
    expect(trustOf(input({ challenges: [...passed, challenge("canary", "error", NOW - 10)] })).tier).toBe(
      "verified",
    );
    expect(trustOf(input({ challenges: passed, evidence: [fraud("ev_1", NOW - 5 * DAY)] })).tier).toBe(
      "community",
    );
    for (const days of [0, 1, 30]) {
      expect(trustOf(input({ now: NOW + days * DAY, challenges: passed })).tier).not.toBe("attested");
    }
  });

  it("never verifies a cloud-account node, however good its record, and keeps its reputation and pay", () => {
    const passed = [challenge("canary", "pass", NOW - 1000)];
    const cloud = trustOf(input({ challenges: passed, backendKind: "cloud" }));
    const embedded = trustOf(input({ challenges: passed }));
    expect(embedded.tier).toBe("verified");
    expect(cloud.tier).toBe("community");
    expect(cloud.reasons[0]).toMatch(/cloud-account node .* cannot prove which hardware serves it/);
    expect(cloud.reputation).toBe(embedded.reputation);
    expect(cloud.payoutFactor).toBe(embedded.payoutFactor);
  });

  it("weighs fraud five times a soft failure and lets both fade with the half-life", () => {
    const soft = trustOf(input({ challenges: [challenge("sample", "fail", NOW)] })).reputation;
    const hard = trustOf(
      input({ challenges: [challenge("benchmark", "fail", NOW, "ev_1")], evidence: [fraud("ev_1", NOW)] }),
    ).reputation;
    expect(hard).toBeLessThan(soft);
    const later = trustOf(
      input({
        now: NOW + 7 * DAY,
        challenges: [challenge("benchmark", "fail", NOW, "ev_1")],
        evidence: [fraud("ev_1", NOW)],
      }),
    ).reputation;
    expect(later).toBeGreaterThan(hard);
    expect(later).toBeLessThan(0.5);
  });

  it("keeps full pay at neutral or better and lowers it, to at most half, below", () => {
    expect(trustOf(input()).payoutFactor).toBe(1);
    const poor = trustOf(input({ healthScore: 0, evidence: [fraud("ev_3", NOW)] }));
    expect(poor.payoutFactor).toBeLessThan(1);
    expect(poor.payoutFactor).toBeGreaterThanOrEqual(0.5);
  });

  it("counts evidence found outside a challenge as a failure", () => {
    const view = trustOf(input({ evidence: [fraud("ev_2", NOW)] }));
    expect(view.reputation).toBeLessThan(0.5);
    expect(view).toMatchObject({ fraud: 1, evidence: ["ev_2"] });
  });
});
