/**
 * Settlement's table in gateway.db: every epoch root the gateway posted, with the entries it was
 * built from, so proofs survive a restart. The gateway's migrations own `user_version`, so this
 * keeps its schema version in its own meta row (as the model registry does); append-only.
 */

import { migrate } from "@gbt/store";
import type { GatewayDatabase } from "../gateway-database.js";

export const settlementMigrations: readonly string[] = [
  `CREATE TABLE settlement_epochs (
     epoch INTEGER NOT NULL,
     contract TEXT NOT NULL,
     root TEXT NOT NULL,
     total TEXT NOT NULL,
     entries_json TEXT NOT NULL,
     tx_hash TEXT NOT NULL,
     posted_at INTEGER NOT NULL,
     PRIMARY KEY (contract, epoch)
   ) STRICT`,
];

/** Brings the settlement tables to the latest schema; safe to call on every start. */
export function migrateSettlement(
  db: GatewayDatabase,
  migrations: readonly string[] = settlementMigrations,
): void {
  migrate(db, { prefix: "settlement", label: "Settlement", migrations });
}
