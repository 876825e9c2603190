/**
 * The gateway's money: consumer accounts and API keys, prices, in-memory credit holds, and the
 * double-entry ledger (integer micro-credits) that settles every served request.
 */
export {
  type AccountInfo,
  AccountStore,
  type AccountStoreOptions,
  type ApiKeyInfo,
  type Authenticated,
  type CreatedApiKey,
  DEFAULT_GRANT_MICRO,
} from "./accounts.js";
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
  type BatchOutcome,
  type InvariantReport,
  Ledger,
  type LedgerEntry,
  type LedgerPosting,
  parseUsageSettlement,
  type ReceiptStatus,
  type SettledUsage,
  SettlementQueue,
  type SettlementQueueOptions,
  type TransactionKind,
  type UsageRecord,
  type UsageSettlement,
  usageSettlementSchema,
} from "./ledger.js";
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
} from "./pricing.js";
export { type CreditHold, CreditReservations, type ReserveOptions } from "./reservations.js";
