/**
 * Throughput challenges: is the node as fast as its signed benchmark says? Pairs of completions of
 * two lengths are timed on the gateway's clock, and their difference (which cancels network and
 * prompt time) gives the time per output token. A node whose best run is slower than its claim by
 * more than `benchmarkDriftLimit` (plus `tpotAllowanceMs` for the link itself), in two rounds in a
 * row, has spoofed its benchmark: objective fraud. Measured only when the node is idle, after one
 * warm-up answer.
 */
import type { InstanceLink, PoolInstance } from "../pool/pool-instance.js";
import { canariesFor } from "./canary-check.js";
import { askNode, challengeRequestId, measureDecode } from "./challenge-client.js";
import { type ChallengeResult, resultOf, skipped } from "./challenge-result.js";
import type { Verifier } from "./verifier.js";

/** Prompt for throughput challenges when a model has no canary. */
const THROUGHPUT_PROMPT = "Write a long list of colours, one per line.";

export async function runThroughputCheck(
  verifier: Verifier,
  instance: PoolInstance,
  link: InstanceLink,
): Promise<ChallengeResult> {
  const claimed = instance.benchmarkTokPerSec;
  if (claimed === null || !(claimed > 0)) return skipped("benchmark", "the node has no signed benchmark");
  const model = instance.models[0];
  if (model === undefined) return skipped("benchmark", "the node serves no model");
  if (instance.inFlight > 0) return skipped("benchmark", "the node is busy; measured when idle");
  const canary = canariesFor(verifier.config, instance, link).find((c) => c.model === model);
  const { benchmarkDriftLimit: limit, tpotAllowanceMs } = verifier.config;
  // TPOT the claim allows: 20% over the signed one, plus a small per-token allowance for timer noise.
  const allowedTpotMs = (1000 / claimed) * (1 + limit) + tpotAllowanceMs;
  const rounds: number[][] = [];
  const failures: string[] = [];
  let measuredTpotMs: number | null = null;
  const request = {
    model,
    messages: [{ role: "user", content: canary?.prompt ?? THROUGHPUT_PROMPT }],
    temperature: 0,
    seed: canary?.seed ?? 1,
  };
  // Warm-up: a cold model's first answer says nothing about its speed.
  await askNode(
    link,
    { ...request, max_tokens: 1 },
    { timeoutMs: verifier.config.challengeTimeoutMs, requestId: challengeRequestId("benchmark") },
  );
  // A slow round is measured once more before anyone is flagged: a transient load is not fraud.
  for (let round = 0; round < 2; round++) {
    const runs: number[] = [];
    for (let run = 0; run < verifier.config.benchmarkRuns; run++) {
      const measured = await measureDecode(link, request, {
        timeoutMs: verifier.config.challengeTimeoutMs,
        longTokens: verifier.config.benchmarkTokens,
        shortTokens: Math.max(1, Math.floor(verifier.config.benchmarkTokens / 8)),
        elapsed: verifier.elapsed,
        longFirst: verifier.random() < 0.5,
      });
      if (measured.ok) runs.push(measured.tpotMs);
      else failures.push(measured.reason);
    }
    rounds.push(runs);
    // The node's best run counts: on a shared machine noise only ever makes an honest node look slower.
    if (runs.length > 0) measuredTpotMs = Math.min(measuredTpotMs ?? Number.POSITIVE_INFINITY, ...runs);
    if (measuredTpotMs !== null && measuredTpotMs <= allowedTpotMs) break;
  }
  const measuredTokPerSec = measuredTpotMs === null ? null : 1000 / measuredTpotMs;
  const details: Record<string, unknown> = { model, claimedTokPerSec: claimed, rounds, failures };
  if (measuredTokPerSec === null || measuredTpotMs === null) {
    const record = verifier.record(instance, "benchmark", "error", details);
    return resultOf("benchmark", record, `no measurement: ${failures.join("; ")}`);
  }
  const drift = 1 - measuredTokPerSec / claimed;
  Object.assign(details, {
    measuredTokPerSec,
    drift,
    limit,
    claimedTpotMs: 1000 / claimed,
    measuredTpotMs,
    allowedTpotMs,
  });
  if (measuredTpotMs <= allowedTpotMs) {
    return resultOf(
      "benchmark",
      verifier.record(instance, "benchmark", "pass", details),
      "throughput as claimed",
    );
  }
  const summary = `Measured ${measuredTokPerSec.toFixed(1)} tok/s against a signed claim of ${claimed.toFixed(1)} tok/s (TPOT ${measuredTpotMs.toFixed(2)} ms; the claim allows ${allowedTpotMs.toFixed(2)} ms: ${Math.round(limit * 100)}% plus ${tpotAllowanceMs} ms for the link).`;
  const record = verifier.record(instance, "benchmark", "fail", details, {
    kind: "benchmark_spoofed",
    summary,
  });
  return resultOf("benchmark", record, summary);
}
