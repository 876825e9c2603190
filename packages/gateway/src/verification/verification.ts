/**
 * Verification and reputation, a feature of the gateway. The gateway checks its nodes itself:
 *
 * - canaries: prompts whose greedy, seeded answer it knows for a model (and digest), sent on a
 *   timer and on demand (`POST /v1/gateway/nodes/:id/challenge`);
 * - redundant sampling: a share (`verification.sampleRate`) of real non-streamed, seeded requests
 *   is replayed on a second node and the answers compared; on disagreement a third node decides,
 *   else the canaries of both;
 * - throughput challenges: pairs of completions of two lengths timed on the gateway's clock (the
 *   difference cancels network and prompt time); a node whose time per
 *   output token exceeds its signed benchmark's by more than `benchmarkDriftLimit` (plus
 *   `tpotAllowanceMs` for the link itself), in two rounds in a row, is flagged.
 *
 * Every outcome is stored; objective fraud (a receipt signed by another key, an answer that proves
 * a claimed digest false, a receipt for tokens not delivered, a spoofed benchmark) becomes an
 * evidence record with a slashing proposal for governance; soft failures only lower reputation.
 * Reputation and tier (trust-score.ts) are shown in `GET /v1/gateway/nodes` and
 * `GET /v1/gateway/nodes/:id/trust`, and routing honours a request's minimum tier.
 *
 * Challenge traffic is neither billed nor paid: it never reaches the receipt settler.
 *
 * One file per job: canary-check.ts, throughput-check.ts, sampling.ts, receipt-audit.ts,
 * verification-scheduler.ts (the timer), verification-routes.ts, trust-views.ts; verifier.ts
 * holds what they share. This module creates the feature and wires its hooks.
 */
import { GbtError } from "@gbt/protocol";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { Address } from "viem";
import type { GatewayDatabase } from "../gateway-database.js";
import type { FeatureStarter, GatewayFeature } from "../gateway-feature.js";
import type { GatewayEnv, GatewayRoutes } from "../http/gateway-env.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { ObservedCompletion, RequestAdmission } from "../proxy/admission.js";
import { tierRank } from "../trust-tier.js";
import type { ChallengeKindRun, ChallengeResult } from "./challenge-result.js";
import type { UsageFeed } from "./evidence-store.js";
import { auditConsumerReceipts } from "./receipt-audit.js";
import { compareAnswers, type SampleComparison, sampleCompletion } from "./sampling.js";
import type { TrustView } from "./trust-score.js";
import type { VerificationConfig } from "./verification-config.js";
import { verificationRoutes } from "./verification-routes.js";
import { startVerificationScheduler } from "./verification-scheduler.js";
import { Verifier } from "./verifier.js";

/** What verification uses of the gateway. */
export interface VerificationPorts {
  config: VerificationConfig;
  chainId: number;
  skewSeconds: number;
  /** The gateway's address: receipts of challenge answers are addressed to it. */
  gateway: Address;
  /** Holds verification's tables (challenges, evidence, slashing proposals). */
  db: GatewayDatabase;
  /** The settled usage records, scanned for refused receipts. */
  usage: UsageFeed;
  pool: Pick<InstancePool, "get" | "active">;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  admin: MiddlewareHandler<GatewayEnv>;
  logger: Logger;
  now: () => number;
}

export interface VerificationOptions {
  /** Uniform [0, 1) source for sampling and canary choice (default Math.random). */
  random?: () => number;
  /** Monotonic ms clock for throughput timing (default performance.now). */
  elapsed?: () => number;
}

/** The hooks verification gives the gateway: tiers for routing, sampling, payouts, the nodes view. */
export interface VerificationFeature extends GatewayFeature {
  routes: GatewayRoutes;
  admit: RequestAdmission;
  observe: (completion: ObservedCompletion) => void;
  payoutFactor: (instanceId: string) => number;
  nodeTrust: (instanceId: string) => TrustView | null;
}

/** Verification as created: started by the server, driven by tests and admins through these. */
export interface Verification extends FeatureStarter<VerificationPorts, VerificationFeature> {
  /** Runs challenges on one instance now (the admin route does the same). */
  challenge(instanceId: string, kinds?: readonly ChallengeKindRun[]): Promise<ChallengeResult[]>;
  /** Replays `body` on two instances and compares (what sampling does with real traffic). */
  compare(first: string, second: string, body: Record<string, unknown>): Promise<SampleComparison>;
  /** Sampling comparisons so far, newest last (at most 1000 kept). */
  readonly comparisons: readonly SampleComparison[];
  /** Resolves once background work started so far (samples, timer challenges) has finished. */
  idle(): Promise<void>;
  /** Scans settled consumer requests for receipts claiming undelivered tokens (the timer does it each round). */
  scanReceipts(): Promise<string[]>;
}

export function createVerification(options: VerificationOptions = {}): Verification {
  const random = options.random ?? Math.random;
  const elapsed = options.elapsed ?? (() => performance.now());
  let running: Verifier | null = null;
  const comparisons: SampleComparison[] = [];
  const pending = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  };
  const started = (): Verifier => {
    if (running === null) throw new GbtError("INTERNAL", "Verification has not started.");
    return running;
  };

  return {
    name: "verification",
    comparisons,
    challenge: async (instanceId, kinds) => started().challenge(instanceId, kinds),
    compare: async (first, second, body) => compareAnswers(started(), first, second, body, null),
    async scanReceipts() {
      const state = started();
      await state.ports.settled();
      return auditConsumerReceipts(state);
    },
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    start(ports) {
      const state = new Verifier(ports, random, elapsed, comparisons, track);
      const scheduler = startVerificationScheduler(state);
      running = state;
      const { minTierByAccount, sampleRate } = ports.config;
      return {
        routes: verificationRoutes(state),
        admit: ({ accountId, minTier }) => {
          // The account's own minimum applies too; the header can only raise it.
          const account = minTierByAccount[accountId];
          const tier = account !== undefined && tierRank(account) > tierRank(minTier) ? account : minTier;
          const rank = tierRank(tier);
          if (rank === 0) return undefined;
          return { tier, allows: (instance) => tierRank(state.views.tierOf(instance.id)) >= rank };
        },
        observe: (completion) => {
          if (!(random() < sampleRate)) return;
          track(sampleCompletion(state, completion)).catch((error) =>
            ports.logger.warn({ err: error, requestId: completion.requestId }, "sampling failed"),
          );
        },
        payoutFactor: (instanceId) => state.views.cached(instanceId)?.payoutFactor ?? 1,
        nodeTrust: (instanceId) => state.views.view(instanceId),
        close: async () => {
          // No new work; what runs finishes (its writes are dropped) before the database closes.
          scheduler.stop();
          state.close();
          running = null;
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.allSettled([...pending]),
            new Promise((resolve) => {
              timer = setTimeout(resolve, 5_000);
            }),
          ]);
          clearTimeout(timer);
        },
      };
    },
  };
}
