/** Settlement on chain: epoch roots of cumulative node earnings, and the proofs nodes claim with. */
export { readCumulativeEarnings } from "./cumulative-earnings.js";
export { EpochStore, type PostedEpoch } from "./epoch-store.js";
export { migrateSettlement, settlementMigrations } from "./settlement-database.js";
export {
  createSettlementExtension,
  type EpochOutcome,
  type SettlementExtension,
  type SettlementExtensionOptions,
} from "./settlement-extension.js";
