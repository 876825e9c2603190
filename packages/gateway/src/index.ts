/**
 * @gbt/gateway: the pooled OpenAI-compatible endpoint. The server and its service
 * (`startGatewayServer`, `startGateway`), the pool (one record per instance: routing state and
 * link), the hot path (proxy/), every other route on Hono (http/), billing (credit holds,
 * receipts, the double-entry ledger), accounts and API keys (auth/), and the features composed
 * beside them: the model registry, the job relay, verification and settlement. Test fakes are
 * in `@gbt/gateway/testing`.
 */

export { recoverSignerNative } from "@gbt/protocol";
export {
  type AccountInfo,
  AccountStore,
  type AccountStoreOptions,
  type ApiKeyInfo,
  type Authenticated,
  type CreatedApiKey,
  DEFAULT_GRANT_MICRO,
} from "./auth/accounts.js";
export { type CreditHold, CreditHolds, type ReserveOptions } from "./billing/credit-holds.js";
export {
  type BatchOutcome,
  type InvariantReport,
  Ledger,
  type LedgerEntry,
  type LedgerPosting,
  type ProviderEarning,
  parseUsageSettlement,
  type ReceiptStatus,
  type ScannedUsage,
  type TransactionKind,
  type UsageRecord,
  type UsageSettlement,
  usageSettlementSchema,
} from "./billing/ledger.js";
export {
  costMicro,
  formatCredits,
  MICRO_PER_CREDIT,
  type ModelPrice,
  modelPriceSchema,
  type PayoutMultipliers,
  type PriceTable,
  priceFor,
  priceTableSchema,
  providerCreditMicro,
} from "./billing/pricing.js";
export { type CompletedRequest, completionTolerance, ReceiptSettler } from "./billing/receipt-settler.js";
export {
  type DeadLetter,
  listDeadLetters,
  type PendingSettlement,
  requeueDeadLetters,
  SettlementJournal,
  settlementJournalDir,
} from "./billing/settlement-journal.js";
export { SettlementQueue, type SettlementQueueOptions } from "./billing/settlement-queue.js";
export type { SettledUsage } from "./billing/settlement-writer.js";
export {
  type GatewayConfig,
  type GatewayConfigInput,
  gatewayConfigSchema,
  loadGatewayConfig,
  parseGatewayConfig,
} from "./gateway-config.js";
export {
  consumerAccount,
  type GatewayDatabase,
  gatewayMigrations,
  openGatewayDatabase,
  PLATFORM_ACCOUNT,
  providerAccount,
  SUSPENSE_ACCOUNT,
  TREASURY_ACCOUNT,
  withGatewayDatabase,
} from "./gateway-database.js";
export type { FeatureStarter, GatewayFeature } from "./gateway-feature.js";
export {
  adminTokenPath,
  ensureGatewaySecrets,
  type GatewaySecrets,
  gatewayKeyPath,
  readGatewayAdminToken,
} from "./gateway-identity.js";
export type { GatewayMetrics } from "./gateway-metrics.js";
export { type GatewayServer, type GatewayServerOptions, startGatewayServer } from "./gateway-server.js";
export {
  createGatewayAccount,
  type GatewayPaths,
  type RunningGateway,
  type StartGatewayParameters,
  startGateway,
  withGatewayAccounts,
} from "./gateway-service.js";
export type { ErrorScope, GatewayEnv, GatewayRoutes } from "./http/gateway-env.js";
export {
  type LimitSource,
  type Limits,
  type LimitTicket,
  RateLimiter,
  type SpendSource,
} from "./limits/rate-limiter.js";
export { type Capability, type ConsumerRoute, requestNeeds } from "./pool/capabilities.js";
export {
  ADMITTED,
  type Admission,
  type BreakerState,
  type CallOutcome,
  CircuitBreaker,
  type CircuitBreakerOptions,
  defaultBreakerOptions,
  REFUSED,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "./pool/circuit-breaker.js";
export {
  defaultHealthWindowOptions,
  type HealthCounts,
  HealthWindow,
  type HealthWindowOptions,
  type ResolvedHealthWindowOptions,
  resolveHealthWindowOptions,
} from "./pool/health-score.js";
export {
  type HeartbeatUpdate,
  InstancePool,
  type InstanceView,
  type ModelAdmission,
  type PoolOptions,
} from "./pool/instance-pool.js";
export type {
  CandidateCounts,
  Lease,
  Leased,
  LeaseOptions,
  LeaseResult,
  NoCandidate,
  ReleaseStats,
} from "./pool/lease.js";
export { NodeRegistrar, type NodeRegistrarOptions } from "./pool/node-registrar.js";
export { type InstanceLink, type InstanceRegistration, PoolInstance } from "./pool/pool-instance.js";
export {
  defaultRampUpOptions,
  defaultSwitchPenaltyOptions,
  type RampUpOptions,
  type ResolvedRampUpOptions,
  type ResolvedSwitchPenaltyOptions,
  rampFactor,
  resolveRampUpOptions,
  resolveSwitchPenaltyOptions,
  type SwitchPenaltyOptions,
  switchPenalty,
} from "./pool/ramp-up.js";
export {
  MIN_TIER_HEADER,
  type ObservedCompletion,
  type RequestAdmission,
  type TierAdmission,
  type TierRequest,
} from "./proxy/admission.js";
export { type ProxyRoute, proxyRoutes } from "./proxy/proxy-routes.js";
export { CHAT_SSE_RULES, SseRelay, type SseRules } from "./proxy/sse-relay.js";
export {
  createModelRegistry,
  type ModelRegistry,
  type ModelRegistryOptions,
  type ModelRegistryPorts,
} from "./registry/model-registry.js";
export { ModelRegistryStore } from "./registry/model-registry-store.js";
export { migrateModelRegistry, registryMigrations } from "./registry/registry-database.js";
export {
  createJobRelay,
  type JobRelay,
  type JobRelayOptions,
  type JobRelayPorts,
  RELAYED_BY_HEADER,
} from "./relay/job-relay.js";
export { cumulativeEarnings } from "./settlement/cumulative-earnings.js";
export { EpochStore, type PostedEpoch } from "./settlement/epoch-store.js";
export {
  createSettlement,
  type EpochOutcome,
  type Settlement,
  type SettlementOptions,
  type SettlementPorts,
} from "./settlement/settlement.js";
export { migrateSettlement, settlementMigrations } from "./settlement/settlement-database.js";
export { tierNamed, tierRank, trustTierSchema } from "./trust-tier.js";
export {
  askNode,
  type DecodeMeasurement,
  measureDecode,
  type NodeAnswer,
} from "./verification/challenge-client.js";
export type { ChallengeResult } from "./verification/challenge-result.js";
export {
  type ChallengeKind,
  type ChallengeOutcome,
  type ChallengeRecord,
  type EvidenceKind,
  type EvidenceRecord,
  type EvidenceSeverity,
  EvidenceStore,
  fraudKinds,
  migrateVerification,
  type UsageFeed,
  verificationMigrations,
} from "./verification/evidence-store.js";
export type { SampleComparison } from "./verification/sampling.js";
export { type TrustInput, type TrustView, trustOf } from "./verification/trust-score.js";
export {
  createVerification,
  type Verification,
  type VerificationFeature,
  type VerificationOptions,
  type VerificationPorts,
} from "./verification/verification.js";
export {
  type Canary,
  canarySchema,
  type VerificationConfig,
  verificationConfigSchema,
} from "./verification/verification-config.js";
