/**
 * The response bodies of the gateway API, as the gateway server sends them, and the error body
 * it answers every failure with. A gateway is another party: every client parses its answers
 * with these schemas, never casts them. Objects whose shape the server fixes are strict (an
 * unknown field is a wrong answer, not something to pass on), every string, number and list is
 * bounded, and keys are declared in the order the server writes them, so a parsed answer
 * serialises back to the same JSON. Types are inferred from the schemas.
 *
 * The node-link and registry schemas live beside their wire contracts (gateway-link.ts,
 * model-manifest-registry.ts) and are re-exported here.
 */
import { z } from "zod";
import {
  gatewayInfoSchema,
  heartbeatDetailsSchema,
  type ModelCapabilitiesDetails,
  modelCapabilitiesSchema,
  registrationDetailsSchema,
  registrationResponseSchema,
} from "../../gateway-link.js";
import {
  registryEntrySchema,
  registryListSchema,
  registryModelSchema,
  registrySubmitResponseSchema,
} from "../../model-manifest-registry.js";
import { address, boundedText, chainId, identifier } from "../../primitives.js";

export type { ModelCapabilitiesDetails };
export {
  gatewayInfoSchema,
  modelCapabilitiesSchema,
  registrationResponseSchema,
  registryEntrySchema,
  registryListSchema,
  registryModelSchema,
  registrySubmitResponseSchema,
};

/** An address as the gateway wrote it (case kept: these are echoed, not signed for). */
const hexAddress = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address");
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex string");
/** A transaction hash, or `0x` for an epoch recorded after a crash without its transaction. */
const txHash = z.string().regex(/^0x(?:[0-9a-fA-F]{64})?$/, "must be a transaction hash or 0x");
/** An unsigned integer too large for a JSON number (wei, epochs), as decimal digits. */
const decimal = (digits: number) =>
  z.string().regex(new RegExp(`^\\d{1,${digits}}$`), "must be decimal digits");
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Milliseconds since the epoch. */
const timestampMs = z
  .number()
  .min(0)
  .max(2 ** 53);
/** An ISO 8601 timestamp. */
const isoTime = z.string().max(32);
const score = z.number().min(0).max(1);
/** Evidence ids: `ev_` and 16 hex digits. */
export const evidenceIdSchema = z.string().regex(/^ev_[0-9a-f]{16}$/, "must be an evidence id (ev_…)");
/** An OpenAI-style list envelope. */
const list = <T extends z.ZodType>(item: T, max: number) =>
  z.strictObject({ object: z.literal("list"), data: z.array(item).max(max) });

/** `{"error": {message, type, param, code}}`: every failure of the gateway API. */
export const gatewayErrorBodySchema = z.strictObject({
  error: z.strictObject({
    message: z.string().max(4000),
    type: z.string().max(64),
    param: z.string().max(256).nullable(),
    code: z.string().max(64).nullable(),
  }),
});
export type GatewayErrorBody = z.infer<typeof gatewayErrorBodySchema>;

// Consumer API.

/** `GET /v1/models`: the models some active node serves, as OpenAI lists them. */
export const modelListSchema = list(
  z.strictObject({
    id: identifier(256),
    object: z.literal("model"),
    created: count,
    owned_by: identifier(64),
    // Absent from gateways before capabilities.
    /** The request parameters some live node of the model honours (OpenRouter's names). */
    supported_parameters: z.array(identifier(64)).max(64).optional(),
    /** What some live node of the model can do (the union of their signed capabilities). */
    capabilities: modelCapabilitiesSchema.optional(),
    /** The largest context a live node serves the model with, in tokens; null when none said. */
    context_length: count.nullable().optional(),
  }),
  10_000,
);
export type ListedModel = z.infer<typeof modelListSchema>["data"][number];

// Node link.

/** `POST /v1/gateway/heartbeat`: the heartbeat was taken. */
export const heartbeatAckSchema = z.strictObject({ ok: z.literal(true) });

// Verification.

export const trustTiers = ["community", "verified", "attested"] as const;
export type TrustTier = (typeof trustTiers)[number];

/** A node's standing as the gateway's verification computes it. */
export const trustViewSchema = z.strictObject({
  tier: z.enum(trustTiers),
  reputation: score,
  /** Payout multiplier earned by the reputation (1 at or above 0.5, down to 0.5). */
  payoutFactor: score,
  /** Each unmet requirement of the next tier (one may list every model the node serves). */
  reasons: z.array(boundedText(70_000)).max(64),
  /** Evidence ids in the window, newest first. */
  evidence: z.array(evidenceIdSchema).max(10_000),
  fraud: count,
  challenges: z.strictObject({
    passed: count,
    failed: count,
    errors: count,
    lastCanary: z.strictObject({ outcome: identifier(32), at: timestampMs }).nullable(),
    lastBenchmark: z
      .strictObject({
        outcome: identifier(32),
        at: timestampMs,
        measuredTokPerSec: z.number().min(0).nullable(),
      })
      .nullable(),
  }),
  benchmarked: z.boolean(),
});
export type TrustView = z.infer<typeof trustViewSchema>;

/** `GET /v1/gateway/nodes/:id/trust`: the standing of one registered node. */
export const nodeTrustSchema = z.strictObject({ id: identifier(128), ...trustViewSchema.shape });
export type NodeTrust = z.infer<typeof nodeTrustSchema>;

export const evidenceKinds = [
  "signature_mismatch",
  "model_digest_mismatch",
  "receipt_not_delivered",
  "benchmark_spoofed",
  "canary_mismatch",
  "sample_outvoted",
] as const;

/** `GET /v1/gateway/evidence/:id`, and each entry of the evidence list. */
export const evidenceRecordSchema = z.strictObject({
  id: evidenceIdSchema,
  /** keccak256 of the record's canonical JSON: the evidence hash a slashing proposal names on chain. */
  hash: hex32,
  instanceId: identifier(128),
  node: hexAddress,
  kind: z.enum(evidenceKinds),
  severity: z.enum(["fraud", "quality"]),
  summary: boundedText(1000),
  details: z.record(z.string().max(128), z.unknown()),
  at: timestampMs,
  slashingProposal: z
    .strictObject({
      id: count,
      status: z.enum(["proposed", "submitted", "withdrawn"]),
      evidenceHash: hex32,
      createdAt: timestampMs,
    })
    .nullable(),
});
export type EvidenceRecord = z.infer<typeof evidenceRecordSchema>;

/** `GET /v1/gateway/evidence`: at most 500 records, newest first. */
export const evidenceListSchema = list(evidenceRecordSchema, 500);

/** One challenge of `POST /v1/gateway/nodes/:id/challenge`. */
export const challengeResultSchema = z.strictObject({
  kind: z.enum(["canary", "benchmark"]),
  outcome: z.enum(["pass", "fail", "error", "skipped"]),
  reason: boundedText(1000),
  challengeId: count.nullable(),
  evidenceId: evidenceIdSchema.nullable(),
  details: z.record(z.string().max(128), z.unknown()),
});
export type ChallengeResult = z.infer<typeof challengeResultSchema>;

export const challengeResponseSchema = z.strictObject({
  id: identifier(128),
  results: z.array(challengeResultSchema).max(2),
  trust: trustViewSchema.nullable(),
});
export type ChallengeResponse = z.infer<typeof challengeResponseSchema>;

// Admin API.

/** One instance of `GET /v1/gateway/nodes`: routing state, trust, and what the node registered. */
/**
 * The accelerator of a node's signed benchmark run (the BenchmarkRecord payload's `gpu`): which
 * backend and devices, VRAM, driver and the layers actually offloaded, or why it ran on the CPU.
 */
export const nodeGpuSchema = z.strictObject({
  backend: z.enum(["cuda", "vulkan", "metal", "cpu"]),
  devices: z.array(boundedText(128)).max(16),
  vramTotalMB: z.number().min(0).max(1e9).nullable(),
  driver: boundedText(64).nullable(),
  gpuLayers: count.nullable(),
  totalLayers: count.nullable(),
  summary: boundedText(512),
});
export type NodeGpu = z.infer<typeof nodeGpuSchema>;

export const gatewayNodeSchema = z.strictObject({
  id: identifier(128),
  nodeAddress: hexAddress,
  url: z.string().max(512),
  models: z.array(identifier(256)).max(256),
  /** active: heartbeats arriving; stale: missed. */
  status: z.enum(["active", "stale", "draining"]),
  lastHeartbeatAt: timestampMs,
  registeredAt: timestampMs,
  breaker: z.enum(["closed", "open", "half-open"]),
  probing: z.boolean(),
  /** Until when a node's 429 keeps it out of routing; null when not cooling down. */
  cooldownUntil: timestampMs.nullable(),
  /** Whether a request could be routed to it now (active, admitted, above the floor, spare > 0). */
  eligible: z.boolean(),
  rampFactor: score,
  switchPenalty: z.number().min(0).max(1),
  declaredCapacity: z.number().min(0),
  /** declaredCapacity × rampFactor. */
  capacity: z.number().min(0),
  inFlight: count,
  spare: z.number(),
  healthScore: score,
  health: z.strictObject({ successes: count, failures: count, neutral: count }),
  tokPerSec: z.strictObject({
    benchmark: z.number().min(0).nullable(),
    observed: z.number().min(0).nullable(),
  }),
  belowFloor: z.boolean(),
  /** Without verification every node is community with an unknown (null) reputation. */
  tier: z.enum(trustTiers),
  reputation: score.nullable(),
  evidence: z.array(evidenceIdSchema).max(10_000),
  trust: trustViewSchema.nullable(),
  backend: registrationDetailsSchema.shape.backend.nullable(),
  modelDigests: z.array(registrationDetailsSchema.shape.models.element).max(256),
  lastHealth: heartbeatDetailsSchema.shape.health.nullable(),
  /** The GPU of its signed benchmark (absent: no benchmark, or one from before gbt knew GPUs). */
  gpu: nodeGpuSchema.nullable().optional(),
});
export type GatewayNode = z.infer<typeof gatewayNodeSchema>;

export const gatewayNodeListSchema = list(gatewayNodeSchema, 10_000);

/** A consumer account with its settled balance (micro-credits). */
export const accountInfoSchema = z.strictObject({
  id: identifier(64),
  name: boundedText(64),
  createdAt: isoTime,
  balanceMicro: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
});
export type AccountInfo = z.infer<typeof accountInfoSchema>;

/** `GET /v1/gateway/accounts`. */
export const accountListSchema = list(accountInfoSchema, 100_000);

/** A new API key: the secret `key` is in this answer only. */
export const createdApiKeySchema = z.strictObject({
  id: identifier(64),
  accountId: identifier(64),
  name: boundedText(64),
  /** The first characters of the key, to recognise it in lists. */
  prefix: z.string().max(32),
  key: z.string().min(16).max(256),
  createdAt: isoTime,
});
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;

/** `POST /v1/gateway/accounts`: the account and its first key. */
export const createdAccountSchema = z.strictObject({ account: accountInfoSchema, key: createdApiKeySchema });
export type CreatedAccount = z.infer<typeof createdAccountSchema>;

/** `GET /v1/gateway/ledger/check`: the double-entry ledger's invariants. */
export const ledgerCheckSchema = z.strictObject({
  ok: z.boolean(),
  /** The sum of every entry; zero in a balanced ledger. */
  totalMicro: z.number().int(),
  unbalancedTransactions: z.array(count).max(100_000),
  negativeConsumers: z.array(z.string().max(64)).max(100_000),
  duplicateRequestIds: z.array(z.string().max(256)).max(100_000),
  mismatchedUsage: z.array(z.string().max(256)).max(100_000),
});
export type LedgerCheck = z.infer<typeof ledgerCheckSchema>;

// Settlement.

/** `GET /v1/settlement`: where the gateway settles and its latest posted epoch. */
export const settlementStatusSchema = z.strictObject({
  contract: hexAddress,
  chainId,
  epochSeconds: count,
  latest: z
    .strictObject({
      epoch: decimal(20),
      root: hex32,
      total: decimal(78),
      nodes: count,
      txHash,
      postedAt: isoTime,
    })
    .nullable(),
});
export type SettlementStatus = z.infer<typeof settlementStatusSchema>;

/** `POST /v1/settlement/epochs`: a root posted, or why not. */
export const epochOutcomeSchema = z.discriminatedUnion("posted", [
  z.strictObject({
    posted: z.literal(true),
    epoch: decimal(20),
    root: hex32,
    total: decimal(78),
    nodes: count,
    txHash,
  }),
  z.strictObject({
    posted: z.literal(false),
    reason: z.enum(["no earnings", "unchanged", "pending"]),
    epoch: decimal(20).nullable(),
  }),
]);
export type EpochOutcome = z.infer<typeof epochOutcomeSchema>;

/** `GET /v1/settlement/proofs/:node`: the node's cumulative earnings and their Merkle proof. */
export const settlementProofSchema = z.strictObject({
  node: address,
  /** Wei, decimal. */
  cumulative: decimal(78),
  proof: z.array(hex32).max(64),
  epoch: decimal(20),
  root: hex32,
  contract: address,
  chainId,
});
export type SettlementProof = z.infer<typeof settlementProofSchema>;

// Operability.

/** `GET /healthz` (200 while serving, 503 with the same body while draining). */
export const gatewayHealthSchema = z.strictObject({
  status: z.enum(["ok", "draining"]),
  address: hexAddress,
  chainId,
  instances: count,
  models: z.array(identifier(256)).max(10_000),
  inFlight: count,
});
export type GatewayHealth = z.infer<typeof gatewayHealthSchema>;

// The door's limits (admin API).

const limitCount = z.number().int().min(1).max(1_000_000_000);

/** One key's or account's limits as gateway.json and `PUT /v1/gateway/limits/…` give them (null: no limit). */
export const limitsInputSchema = z.strictObject({
  requestsPerMinute: limitCount.max(1_000_000).nullable().optional(),
  tokensPerMinute: limitCount.nullable().optional(),
  concurrentRequests: limitCount.max(100_000).nullable().optional(),
  /** Micro-credits an account may spend per `budgetPeriod` (accounts only). */
  budgetMicro: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  budgetPeriod: z.enum(["day", "month"]).optional(),
});
export type LimitsInput = z.infer<typeof limitsInputSchema>;

/** The limits in force for one subject (absent: no limit). */
export const effectiveLimitsSchema = z.strictObject({
  requestsPerMinute: limitCount.optional(),
  tokensPerMinute: limitCount.optional(),
  concurrentRequests: limitCount.optional(),
  budgetMicro: z.number().int().min(0).optional(),
  budgetPeriod: z.enum(["day", "month"]).optional(),
});
export type EffectiveLimits = z.infer<typeof effectiveLimitsSchema>;

export const subjectLimitsSchema = z.strictObject({
  kind: z.enum(["key", "account"]),
  id: z.string().max(128),
  limits: effectiveLimitsSchema,
});
export type SubjectLimits = z.infer<typeof subjectLimitsSchema>;

export const limitsOverviewSchema = z.strictObject({
  perKey: effectiveLimitsSchema,
  perAccount: effectiveLimitsSchema,
  overrides: z.array(subjectLimitsSchema).max(1_000_000),
});
export type LimitsOverview = z.infer<typeof limitsOverviewSchema>;
