/**
 * The background checks, when `verification.enabled`: every round (the shorter of the canary and
 * throughput intervals, at most a minute) first audits the receipts settled since the last round,
 * then challenges each active instance whose canary or throughput check is due. A slow round is
 * not overlapped by the next.
 */
import type { ChallengeKindRun } from "./challenge-result.js";
import { auditConsumerReceipts } from "./receipt-audit.js";
import type { Verifier } from "./verifier.js";

export interface VerificationScheduler {
  stop(): void;
}

export function startVerificationScheduler(verifier: Verifier): VerificationScheduler {
  const config = verifier.config;
  if (!config.enabled) return { stop: () => undefined };
  let ticking = false;
  const every = Math.min(config.canaryIntervalMs, config.benchmarkIntervalMs, 60_000);
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    verifier
      .track(round(verifier))
      .finally(() => {
        ticking = false;
      })
      .catch((error) => verifier.ports.logger.warn({ err: error }, "verification round failed"));
  }, every);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** One round: receipts first, then each active instance whose canary or throughput check is due. */
async function round(verifier: Verifier): Promise<void> {
  const { ports, config } = verifier;
  await ports.settled();
  await auditConsumerReceipts(verifier);
  const now = ports.now();
  for (const instance of ports.pool.active()) {
    const last = verifier.lastRun.get(instance.id) ?? {
      canary: Number.NEGATIVE_INFINITY,
      benchmark: Number.NEGATIVE_INFINITY,
    };
    const kinds: ChallengeKindRun[] = [];
    if (now - last.canary >= config.canaryIntervalMs) kinds.push("canary");
    if (now - last.benchmark >= config.benchmarkIntervalMs) kinds.push("benchmark");
    if (kinds.length > 0) await verifier.challenge(instance.id, kinds);
  }
}
