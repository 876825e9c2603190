/**
 * @gbt/gateway: the pooled OpenAI-compatible endpoint. The HTTP server (consumer API, node link,
 * admin API), the routing core (live instance registry, least-loaded router with breaker, floor,
 * ramp-up and health), the receipt settler, and the ledger (accounts, keys, credits, double entry).
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
export { bearerToken } from "./auth/bearer-token.js";
export { type CreditHold, CreditHolds, type ReserveOptions } from "./billing/credit-holds.js";
export {
  type BatchOutcome,
  type InvariantReport,
  Ledger,
  type LedgerEntry,
  type LedgerPosting,
  parseUsageSettlement,
  type ReceiptStatus,
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
} from "./gateway-database.js";
export {
  adminTokenPath,
  ensureGatewaySecrets,
  type GatewaySecrets,
  gatewayKeyPath,
} from "./gateway-identity.js";
export {
  type GatewayServer,
  type GatewayServerOptions,
  startGatewayServer,
} from "./gateway-server.js";
export {
  createGatewayAccount,
  type GatewayPaths,
  type RunningGateway,
  type StartGatewayParameters,
  startGateway,
  withGatewayAccounts,
} from "./gateway-service.js";
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
  type RequestTrust,
} from "./proxy/admission.js";
export { SseRelay } from "./proxy/sse-relay.js";
export {
  createModelRegistryExtension,
  type ModelRegistryExtensionOptions,
  ModelRegistryStore,
  migrateModelRegistry,
  registryMigrations,
} from "./registry/index.js";
export {
  type JobRelayOptions,
  jobRelay,
  MAX_RELAYED_JOB_BYTES,
  RELAYED_BY_HEADER,
} from "./relay/job-relay.js";
export type {
  GatewayExtension,
  GatewayExtensionContext,
  GatewayExtensionInstance,
} from "./server/gateway-extension.js";
export {
  createSettlementExtension,
  type EpochOutcome,
  EpochStore,
  type PostedEpoch,
  readCumulativeEarnings,
  type SettlementExtension,
  type SettlementExtensionOptions,
} from "./settlement/index.js";
export * from "./verification/index.js";
