/**
 * Verification and reputation as a gateway extension. The gateway checks its nodes itself:
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
 * `GET /v1/gateway/nodes/:id/trust`, and the router honours a request's minimum tier.
 *
 * Challenge traffic is neither billed nor paid: it never reaches the receipt settler.
 */
import { createHash } from "node:crypto";
import {
  GbtError,
  gatewayPaths,
  isGbtError,
  recoverSignerNative,
  type TrustTier,
  verifyObject,
} from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { Address } from "viem";
import { z } from "zod";
import type { GatewayDatabase } from "../gateway-database.js";
import type { FeatureStarter, GatewayFeature } from "../gateway-feature.js";
import { readJson } from "../http/body.js";
import { methodNotAllowed } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../http/gateway-env.js";
import { parseInput, queryProblem } from "../http/validate.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { InstanceLink, PoolInstance } from "../pool/pool-instance.js";
import type { ObservedCompletion, RequestAdmission } from "../proxy/admission.js";
import { tierRank } from "../trust-tier.js";
import { askNode, challengeRequestId, measureDecode } from "./challenge-client.js";
import {
  type ChallengeOutcome,
  type ChallengeRecord,
  type EvidenceKind,
  EvidenceStore,
  type RefusedReceipt,
  type UsageFeed,
} from "./evidence-store.js";
import { type TrustView, trustOf } from "./trust-score.js";
import type { Canary, VerificationConfig } from "./verification-config.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/**
 * A trust view read for routing or payouts (every request, every receipt) stays cached this long;
 * new evidence or a challenge outcome invalidates it at once.
 */
const VIEW_CACHE_MS = 5_000;

export interface ChallengeResult {
  kind: "canary" | "benchmark";
  outcome: ChallengeOutcome | "skipped";
  reason: string;
  challengeId: number | null;
  evidenceId: string | null;
  details: Record<string, unknown>;
}

export interface SampleComparison {
  requestId: string;
  model: string;
  /** The instances compared: the one that served the request first. */
  instances: [string, string];
  agree: boolean | null;
  /** Set when a third node broke a disagreement. */
  referee: string | null;
  /** The instance outvoted, when known. */
  outvoted: string | null;
  reason: string;
}

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
  challenge(instanceId: string, kinds?: readonly ("canary" | "benchmark")[]): Promise<ChallengeResult[]>;
  /** Replays `body` on two instances and compares (what sampling does with real traffic). */
  compare(first: string, second: string, body: Record<string, unknown>): Promise<SampleComparison>;
  /** Sampling comparisons so far, newest last (at most 1000 kept). */
  readonly comparisons: readonly SampleComparison[];
  /** Resolves once background work started so far (samples, timer challenges) has finished. */
  idle(): Promise<void>;
  /** Scans settled consumer requests for receipts claiming undelivered tokens (the timer does it each round). */
  scanReceipts(): Promise<string[]>;
}

const challengeBody = z
  .strictObject({
    kinds: z
      .array(z.enum(["canary", "benchmark"]))
      .min(1)
      .max(2)
      .optional(),
  })
  .nullable();
const evidenceQuery = z.strictObject({
  node: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});
const sampledRequest = z.looseObject({
  model: z.string().min(1).max(256),
  seed: z.number().int(),
  stream: z.literal(false).nullable().optional(),
});

/** Verification failures that prove a receipt was not signed by the node it names. */
const SIGNATURE_FAILURES: readonly string[] = [
  "SIGNATURE_INVALID",
  "UNKNOWN_SIGNER",
  "SIGNER_MISMATCH",
  "PAYLOAD_HASH_MISMATCH",
];

/** Prompt for throughput challenges when a model has no canary. */
const THROUGHPUT_PROMPT = "Write a long list of colours, one per line.";

export function createVerification(options: VerificationOptions = {}): Verification {
  const random = options.random ?? Math.random;
  const elapsed = options.elapsed ?? (() => performance.now());
  let running: Running | null = null;
  const comparisons: SampleComparison[] = [];
  const pending = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  };
  const started = (): Running => {
    if (running === null) throw new GbtError("INTERNAL", "Verification has not started.");
    return running;
  };

  return {
    name: "verification",
    comparisons,
    challenge: async (instanceId, kinds) => started().challenge(instanceId, kinds),
    compare: async (first, second, body) => started().compare(first, second, body, null),
    async scanReceipts() {
      const state = started();
      await state.ports.settled();
      return state.scanReceipts();
    },
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    start(ports) {
      const state = new Running(ports, random, elapsed, comparisons, track);
      running = state;
      const { minTierByAccount, sampleRate } = ports.config;
      return {
        routes: state.routes(),
        admit: ({ accountId, minTier }) => {
          // The account's own minimum applies too; the header can only raise it.
          const account = minTierByAccount[accountId];
          const tier = account !== undefined && tierRank(account) > tierRank(minTier) ? account : minTier;
          const rank = tierRank(tier);
          if (rank === 0) return undefined;
          return { tier, allows: (instance) => tierRank(state.tierOf(instance.id)) >= rank };
        },
        observe: (completion) => {
          if (!(random() < sampleRate)) return;
          track(state.sample(completion)).catch((error) =>
            ports.logger.warn({ err: error, requestId: completion.requestId }, "sampling failed"),
          );
        },
        payoutFactor: (instanceId) => state.cachedView(instanceId)?.payoutFactor ?? 1,
        nodeTrust: (instanceId) => state.view(instanceId),
        close: async () => {
          // No new work; what runs finishes (its writes are dropped) before the database closes.
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

class Running {
  readonly store: EvidenceStore;
  readonly #views = new Map<string, { view: TrustView | null; until: number }>();
  readonly #lastRun = new Map<string, { canary: number; benchmark: number }>();
  readonly #busy = new Set<string>();
  readonly #timer: NodeJS.Timeout | null;

  constructor(
    readonly ports: VerificationPorts,
    readonly random: () => number,
    readonly elapsed: () => number,
    readonly comparisons: SampleComparison[],
    readonly track: <T>(promise: Promise<T>) => Promise<T>,
  ) {
    this.store = new EvidenceStore(ports.db, ports.now);
    const config = ports.config;
    if (config.enabled) {
      const every = Math.min(config.canaryIntervalMs, config.benchmarkIntervalMs, 60_000);
      this.#timer = setInterval(() => {
        if (this.#ticking) return; // a slow round is not overlapped by the next
        this.#ticking = true;
        this.track(this.#tick())
          .finally(() => {
            this.#ticking = false;
          })
          .catch((error) => ports.logger.warn({ err: error }, "verification round failed"));
      }, every);
      this.#timer.unref();
    } else {
      this.#timer = null;
    }
  }

  #closed = false;

  /** Work that outlives close() stops at its next write: the database is about to close. */
  #open(): void {
    if (this.#closed)
      throw new GbtError("INTERRUPTED", "The gateway is shutting down; verification stopped.");
  }
  #ticking = false;

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
  }

  get #config() {
    return this.ports.config;
  }

  /**
   * Turns refused consumer receipts into fraud evidence when the refusal is objective: a receipt
   * not signed by the node that served (signature mismatch), or one claiming more completion
   * tokens than the gateway relayed (work not delivered). Expired or malformed receipts are the
   * settler's business only. Returns the new records' ids.
   */
  async scanReceipts(): Promise<string[]> {
    this.#open();
    const ids: string[] = [];
    for (const refused of this.store.takeRefusedReceipts(this.ports.usage)) {
      const finding = await this.#judgeConsumerReceipt(refused);
      if (finding === null) continue;
      this.#open();
      // The ledger keeps addresses lower-case; evidence names the node as it signs (checksummed).
      const node = this.ports.pool.get(refused.node.toLowerCase())?.nodeAddress ?? refused.node;
      const record = this.store.addEvidence({
        instanceId: refused.node.toLowerCase(),
        node,
        kind: finding.kind,
        summary: finding.summary,
        details: { requestId: refused.requestId, source: "consumer traffic", ...finding.details },
      });
      this.#views.delete(record.instanceId);
      this.ports.logger.warn(
        { node, evidence: record.id, kind: record.kind },
        "verification evidence recorded",
      );
      ids.push(record.id);
    }
    return ids;
  }

  async #judgeConsumerReceipt(
    refused: RefusedReceipt,
  ): Promise<{ kind: EvidenceKind; summary: string; details: Record<string, unknown> } | null> {
    let value: unknown;
    try {
      value = JSON.parse(refused.receiptJson);
    } catch {
      return null;
    }
    const claimed = (value as { message?: { completionTokens?: unknown; issuedAt?: unknown } } | null)
      ?.message;
    if (refused.status === "mismatch") {
      if (
        typeof claimed?.completionTokens !== "number" ||
        claimed.completionTokens <= refused.billedCompletionTokens
      )
        return null;
      return {
        kind: "receipt_not_delivered",
        summary: `Signed a receipt for ${claimed.completionTokens} completion tokens of request ${refused.requestId}; the gateway relayed ${refused.billedCompletionTokens}.`,
        details: {
          claimedCompletionTokens: claimed.completionTokens,
          deliveredCompletionTokens: refused.billedCompletionTokens,
          receipt: value,
        },
      };
    }
    // Only the signature matters here: check it as of the receipt's own time, so that a late scan
    // (or an expired receipt) never reads as forgery.
    const issuedAt = typeof claimed?.issuedAt === "number" ? claimed.issuedAt * 1000 : Date.now();
    try {
      await verifyObject(value, {
        recoverSigner: recoverSignerNative,
        kind: "UsageReceipt",
        chainId: this.ports.chainId,
        allowedSigners: [refused.node as `0x${string}`],
        skewSeconds: this.ports.skewSeconds,
        now: () => issuedAt,
      });
      return null;
    } catch (error) {
      if (!isGbtError(error) || !SIGNATURE_FAILURES.includes(error.code)) return null;
      return {
        kind: "signature_mismatch",
        summary: `Its usage receipt for request ${refused.requestId} is not signed by its own key (${error.code}).`,
        details: { check: error.code, receipt: value },
      };
    }
  }

  /** One timer round: receipts first, then each active instance whose canary or throughput check is due. */
  async #tick(): Promise<void> {
    await this.ports.settled();
    await this.scanReceipts();
    const now = this.ports.now();
    for (const instance of this.ports.pool.active()) {
      const last = this.#lastRun.get(instance.id) ?? {
        canary: Number.NEGATIVE_INFINITY,
        benchmark: Number.NEGATIVE_INFINITY,
      };
      const kinds: ("canary" | "benchmark")[] = [];
      if (now - last.canary >= this.#config.canaryIntervalMs) kinds.push("canary");
      if (now - last.benchmark >= this.#config.benchmarkIntervalMs) kinds.push("benchmark");
      if (kinds.length > 0) await this.challenge(instance.id, kinds);
    }
  }

  #instance(instanceId: string): { instance: PoolInstance; link: InstanceLink } {
    const instance = this.ports.pool.get(instanceId.toLowerCase());
    if (instance === undefined) {
      throw new GbtError("NOT_FOUND", `No node ${instanceId} is registered with this gateway.`, {
        details: { instance: instanceId },
        hint: "List the pool with `gbt gateway nodes`.",
      });
    }
    return { instance, link: instance.link };
  }

  tierOf(instanceId: string): TrustTier {
    return this.cachedView(instanceId)?.tier ?? "community";
  }

  /** `view`, cached for the hot paths (routing, settlement); fresh views are for people and challenges. */
  cachedView(instanceId: string): TrustView | null {
    const now = this.ports.now();
    const cached = this.#views.get(instanceId);
    if (cached !== undefined && cached.until > now) return cached.view;
    const view = this.view(instanceId);
    this.#views.set(instanceId, { view, until: now + VIEW_CACHE_MS });
    return view;
  }

  view(instanceId: string): TrustView | null {
    const id = instanceId.toLowerCase();
    const instance = this.ports.pool.get(id);
    if (instance === undefined) return null;
    const link = instance.link;
    const now = this.ports.now();
    const since = now - this.#config.windowDays * DAY_MS;
    return trustOf({
      now,
      healthScore: instance.health.score(now),
      challenges: this.store.challenges(id, since),
      evidence: this.store.listEvidence({ instanceId: id, since }),
      runtimeVersion: link.backend?.version ?? null,
      models: link.models.filter((m) => instance.models.includes(m.id)),
      benchmarkTokPerSec: instance.benchmarkTokPerSec,
      halfLifeMs: this.#config.reputationHalfLifeDays * DAY_MS,
      verifiedTtlMs: this.#config.verifiedTtlHours * HOUR_MS,
    });
  }

  #record(
    instance: PoolInstance,
    kind: ChallengeRecord["kind"],
    outcome: ChallengeOutcome,
    details: Record<string, unknown>,
    evidence?: { kind: EvidenceKind; summary: string },
  ): ChallengeRecord {
    this.#open();
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
    this.#views.delete(instance.id);
    return this.store.recordChallenge({
      instanceId: instance.id,
      node: instance.nodeAddress,
      kind,
      outcome,
      details,
      evidenceId: record?.id ?? null,
    });
  }

  async challenge(instanceId: string, kinds: readonly ("canary" | "benchmark")[] = ["canary", "benchmark"]) {
    const { instance, link } = this.#instance(instanceId);
    const key = instance.id;
    const results: ChallengeResult[] = [];
    if (this.#busy.has(key)) {
      return kinds.map((kind) => skipped(kind, "a challenge of this node is already running"));
    }
    this.#busy.add(key);
    try {
      const last = this.#lastRun.get(key) ?? {
        canary: Number.NEGATIVE_INFINITY,
        benchmark: Number.NEGATIVE_INFINITY,
      };
      for (const kind of kinds) {
        last[kind] = this.ports.now();
        results.push(
          kind === "canary" ? await this.#canary(instance, link) : await this.#benchmark(instance, link),
        );
      }
      this.#lastRun.set(key, last);
    } finally {
      this.#busy.delete(key);
    }
    return results;
  }

  /** The canaries whose answer is known for what this node claims to serve. */
  #canariesFor(instance: PoolInstance, link: InstanceLink): Canary[] {
    return this.#config.canaries.filter((canary) => {
      if (!instance.models.includes(canary.model)) return false;
      if (canary.digest === undefined) return true;
      return link.models.find((m) => m.id === canary.model)?.digest === canary.digest;
    });
  }

  async #canary(instance: PoolInstance, link: InstanceLink): Promise<ChallengeResult> {
    const canaries = this.#canariesFor(instance, link);
    if (canaries.length === 0) {
      return skipped("canary", "no canary is known for the models (and digests) this node claims");
    }
    const canary = canaries[Math.floor(this.random() * canaries.length)] as Canary;
    const answer = await askNode(link, canaryBody(canary), {
      timeoutMs: this.#config.challengeTimeoutMs,
      requestId: challengeRequestId("canary"),
    });
    const details: Record<string, unknown> = {
      model: canary.model,
      digest: canary.digest ?? null,
      seed: canary.seed,
      requestId: answer.requestId,
    };
    if (!answer.ok) {
      const record = this.#record(instance, "canary", "error", { ...details, reason: answer.reason });
      return result("canary", record, `no verdict: ${answer.reason}`);
    }
    const fraud = await this.#receiptFraud(instance, answer, canary.maxTokens);
    if (fraud !== null) {
      const record = this.#record(instance, "canary", "fail", { ...details, ...fraud.details }, fraud);
      return result("canary", record, fraud.summary);
    }
    if (answer.content === canary.expected) {
      return result("canary", this.#record(instance, "canary", "pass", details), "the answer matches");
    }
    const mismatch = {
      ...details,
      expectedSha256: sha256Hex(canary.expected),
      answeredSha256: sha256Hex(answer.content),
      answeredPreview: answer.content.slice(0, 200),
    };
    const record = this.#record(
      instance,
      "canary",
      "fail",
      mismatch,
      canary.digest !== undefined
        ? {
            kind: "model_digest_mismatch",
            summary: `Claims ${canary.model} with digest ${canary.digest}, but its greedy seeded answer differs from that model's.`,
          }
        : {
            kind: "canary_mismatch",
            summary: `Its greedy seeded answer for ${canary.model} differs from the known one.`,
          },
    );
    return result("canary", record, "the answer differs from the known one");
  }

  /** Objective fraud in a challenge answer's receipt: signed by another key, or for tokens not delivered. */
  async #receiptFraud(
    instance: PoolInstance,
    answer: { receipt: string | null; completionTokens: number | null; requestId: string },
    maxTokens: number,
  ): Promise<{ kind: EvidenceKind; summary: string; details: Record<string, unknown> } | null> {
    if (answer.receipt === null) return null;
    let value: unknown;
    try {
      value = JSON.parse(answer.receipt);
    } catch {
      return null;
    }
    try {
      const receipt = await verifyObject(value, {
        recoverSigner: recoverSignerNative,
        kind: "UsageReceipt",
        chainId: this.ports.chainId,
        audience: this.ports.gateway,
        allowedSigners: [instance.nodeAddress as `0x${string}`],
        skewSeconds: this.ports.skewSeconds,
      });
      const claimed = receipt.message.completionTokens;
      const delivered = answer.completionTokens;
      if (claimed > maxTokens || (delivered !== null && claimed > delivered)) {
        return {
          kind: "receipt_not_delivered",
          summary: `Signed a receipt for ${claimed} completion tokens but delivered ${delivered ?? "?"} (max_tokens ${maxTokens}).`,
          details: { receipt: value, claimedTokens: claimed, deliveredTokens: delivered },
        };
      }
      return null;
    } catch (error) {
      if (
        isGbtError(error) &&
        ["SIGNATURE_INVALID", "UNKNOWN_SIGNER", "SIGNER_MISMATCH", "PAYLOAD_HASH_MISMATCH"].includes(
          error.code,
        )
      ) {
        return {
          kind: "signature_mismatch",
          summary: `Its usage receipt is not signed by its own key (${error.code}).`,
          details: { receipt: value, check: error.code },
        };
      }
      return null;
    }
  }

  async #benchmark(instance: PoolInstance, link: InstanceLink): Promise<ChallengeResult> {
    const claimed = instance.benchmarkTokPerSec;
    if (claimed === null || !(claimed > 0)) return skipped("benchmark", "the node has no signed benchmark");
    const model = instance.models[0];
    if (model === undefined) return skipped("benchmark", "the node serves no model");
    if (instance.inFlight > 0) return skipped("benchmark", "the node is busy; measured when idle");
    const canary = this.#canariesFor(instance, link).find((c) => c.model === model);
    const { benchmarkDriftLimit: limit, tpotAllowanceMs } = this.#config;
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
      { timeoutMs: this.#config.challengeTimeoutMs, requestId: challengeRequestId("benchmark") },
    );
    // A slow round is measured once more before anyone is flagged: a transient load is not fraud.
    for (let round = 0; round < 2; round++) {
      const runs: number[] = [];
      for (let run = 0; run < this.#config.benchmarkRuns; run++) {
        const measured = await measureDecode(link, request, {
          timeoutMs: this.#config.challengeTimeoutMs,
          longTokens: this.#config.benchmarkTokens,
          shortTokens: Math.max(1, Math.floor(this.#config.benchmarkTokens / 8)),
          elapsed: this.elapsed,
          longFirst: this.random() < 0.5,
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
      const record = this.#record(instance, "benchmark", "error", details);
      return result("benchmark", record, `no measurement: ${failures.join("; ")}`);
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
      return result(
        "benchmark",
        this.#record(instance, "benchmark", "pass", details),
        "throughput as claimed",
      );
    }
    const summary = `Measured ${measuredTokPerSec.toFixed(1)} tok/s against a signed claim of ${claimed.toFixed(1)} tok/s (TPOT ${measuredTpotMs.toFixed(2)} ms; the claim allows ${allowedTpotMs.toFixed(2)} ms: ${Math.round(limit * 100)}% plus ${tpotAllowanceMs} ms for the link).`;
    const record = this.#record(instance, "benchmark", "fail", details, {
      kind: "benchmark_spoofed",
      summary,
    });
    return result("benchmark", record, summary);
  }

  /** Redundant sampling of one real request (already chosen by the sample rate). */
  async sample(completion: ObservedCompletion): Promise<SampleComparison | null> {
    let body: z.infer<typeof sampledRequest>;
    try {
      const parsed = sampledRequest.safeParse(JSON.parse(completion.body.toString("utf8")));
      if (!parsed.success) return null; // unseeded or streamed: nothing to compare exactly
      body = parsed.data;
    } catch {
      return null;
    }
    const first = this.ports.pool.get(completion.instanceId);
    if (first === undefined) return null;
    const second = this.#otherInstance(body.model, [completion.instanceId]);
    if (second === undefined) return null;
    const original = parseContent(completion.response);
    if (original === null) return null;
    return this.compare(completion.instanceId, second.id, body, {
      requestId: completion.requestId,
      content: original,
    });
  }

  #otherInstance(model: string, exclude: readonly string[]): PoolInstance | undefined {
    const candidates = this.ports.pool.active(model).filter((instance) => !exclude.includes(instance.id));
    return candidates[Math.floor(this.random() * candidates.length)];
  }

  async compare(
    firstId: string,
    secondId: string,
    body: Record<string, unknown>,
    original: { requestId: string; content: string } | null,
  ): Promise<SampleComparison> {
    const a = this.#instance(firstId);
    const b = this.#instance(secondId);
    const model = String(body.model ?? "");
    const timeoutMs = this.#config.challengeTimeoutMs;
    const first: { ok: true; content: string } | { ok: false; reason: string } =
      original !== null
        ? { ok: true, content: original.content }
        : await askNode(a.link, body, { timeoutMs, requestId: challengeRequestId("sample") });
    const second = await askNode(b.link, body, { timeoutMs, requestId: challengeRequestId("sample") });
    const comparison: SampleComparison = {
      requestId: original?.requestId ?? "admin",
      model,
      instances: [a.instance.id, b.instance.id],
      agree: null,
      referee: null,
      outvoted: null,
      reason: "",
    };
    const done = (reason: string) => {
      comparison.reason = reason;
      this.comparisons.push(comparison);
      if (this.comparisons.length > 1000) this.comparisons.shift();
      return comparison;
    };
    if (!first.ok || !second.ok) {
      return done(`no comparison: ${!first.ok ? first.reason : (second as { reason: string }).reason}`);
    }
    const details = { model, requestId: comparison.requestId, seed: body.seed ?? null };
    if (first.content === second.content) {
      comparison.agree = true;
      this.#record(a.instance, "sample", "pass", { ...details, comparedWith: b.instance.id });
      this.#record(b.instance, "sample", "pass", { ...details, comparedWith: a.instance.id });
      return done("the answers match");
    }
    comparison.agree = false;
    const referee = this.#otherInstance(model, [a.instance.id, b.instance.id]);
    const third =
      referee === undefined
        ? null
        : await askNode(this.#instance(referee.id).link, body, {
            timeoutMs,
            requestId: challengeRequestId("sample"),
          });
    if (
      referee !== undefined &&
      third?.ok === true &&
      (third.content === first.content) !== (third.content === second.content)
    ) {
      comparison.referee = referee.id;
      const [winner, loser] = third.content === first.content ? [a, b] : [b, a];
      comparison.outvoted = loser.instance.id;
      this.#record(winner.instance, "sample", "pass", {
        ...details,
        comparedWith: loser.instance.id,
        referee: referee.id,
      });
      this.#record(referee, "sample", "pass", { ...details, comparedWith: winner.instance.id });
      this.#record(
        loser.instance,
        "sample",
        "fail",
        {
          ...details,
          comparedWith: winner.instance.id,
          referee: referee.id,
          answeredSha256: sha256Hex(third.content === first.content ? second.content : first.content),
        },
        {
          kind: "sample_outvoted",
          summary: `Its seeded answer for ${model} differs from two other nodes' (which agree).`,
        },
      );
      return done("outvoted by a third node");
    }
    // Two answers, no majority: the canaries of both decide, when any is known.
    for (const side of [a, b]) {
      if (this.#canariesFor(side.instance, side.link).length > 0)
        await this.challenge(side.instance.id, ["canary"]);
    }
    return done("the answers differ; no third node agreed with either (canaries run on both)");
  }

  /** `GET /v1/gateway/nodes/:id/trust` (public), `POST …/challenge`, `GET /v1/gateway/evidence[/:id]` (admin). */
  routes(): GatewayRoutes {
    const { admin } = this.ports;
    return new Hono<GatewayEnv>()
      .get(`${gatewayPaths.nodes}/:id/trust`, named("verification_trust"), (c) => {
        const id = c.req.param("id").toLowerCase();
        // Public: a node's operator reads its own standing (`gbt node status`) without the admin token.
        this.#instance(id);
        return c.json({ id, ...(this.view(id) as TrustView) });
      })
      .all(`${gatewayPaths.nodes}/:id/trust`, () => {
        throw methodNotAllowed("GET");
      })
      .post(`${gatewayPaths.nodes}/:id/challenge`, named("verification_challenge"), admin, async (c) => {
        const id = c.req.param("id").toLowerCase();
        const body = parseInput(
          challengeBody,
          await readJson(c, 8 * 1024),
          () => 'The body must be {} or {"kinds": ["canary", "benchmark"]}.',
        );
        const results = await this.challenge(id, body?.kinds ?? ["canary", "benchmark"]);
        return c.json({ id, results, trust: this.view(id) });
      })
      .all(`${gatewayPaths.nodes}/:id/challenge`, () => {
        throw methodNotAllowed("POST");
      })
      .use(gatewayPaths.evidence, admin)
      .use(`${gatewayPaths.evidence}/:id`, admin)
      .get(gatewayPaths.evidence, named("verification_evidence"), (c) => {
        const query = parseInput(evidenceQuery, c.req.query(), queryProblem, "Use ?node=0x…&limit=1..500.");
        return c.json({
          object: "list",
          data: this.store.listEvidence({
            ...(query.node ? { instanceId: query.node.toLowerCase() } : {}),
            ...(query.limit ? { limit: query.limit } : {}),
          }),
        });
      })
      .get(`${gatewayPaths.evidence}/:id`, named("verification_evidence"), (c) =>
        c.json(this.store.getEvidence(c.req.param("id"))),
      )
      .all(gatewayPaths.evidence, () => {
        throw methodNotAllowed("GET");
      })
      .all(`${gatewayPaths.evidence}/:id`, () => {
        throw methodNotAllowed("GET");
      });
  }
}

function canaryBody(canary: Canary): Record<string, unknown> {
  return {
    model: canary.model,
    messages: [{ role: "user", content: canary.prompt }],
    max_tokens: canary.maxTokens,
    temperature: 0,
    seed: canary.seed,
  };
}

function parseContent(response: Buffer): string | null {
  try {
    const json = JSON.parse(response.toString("utf8")) as { choices?: { message?: { content?: unknown } }[] };
    const content = json.choices?.[0]?.message?.content;
    return typeof content === "string" ? content : null;
  } catch {
    return null;
  }
}

function skipped(kind: "canary" | "benchmark", reason: string): ChallengeResult {
  return { kind, outcome: "skipped", reason, challengeId: null, evidenceId: null, details: {} };
}

function result(kind: "canary" | "benchmark", record: ChallengeRecord, reason: string): ChallengeResult {
  return {
    kind,
    outcome: record.outcome,
    reason,
    challengeId: record.id,
    evidenceId: record.evidenceId,
    details: record.details,
  };
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
