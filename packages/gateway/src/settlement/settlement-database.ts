/**
 * Settlement's table in gateway.db: every epoch root the gateway posted, with the entries it was
 * built from, so proofs survive a restart. The gateway's migrations own `user_version`, so this
 * keeps its schema version in its own meta row (as the model registry does); append-only.
 */
import { GbtError } from "@gbt/protocol";
import type { GatewayDatabase } from "../ledger/gateway-database.js";

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

export function migrateSettlement(
  db: GatewayDatabase,
  migrations: readonly string[] = settlementMigrations,
): void {
  db.exec("CREATE TABLE IF NOT EXISTS settlement_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT");
  // IMMEDIATE: two processes starting on one database migrate one after the other, never both.
  db.transaction(() => {
    const row = db.prepare("SELECT value FROM settlement_meta WHERE key = 'schema_version'").get() as
      | { value: number }
      | undefined;
    const current = row?.value ?? 0;
    if (current > migrations.length) {
      throw new GbtError(
        "CONFIG_INVALID",
        `Settlement in ${db.name} has schema ${current}, newer than this gbt understands (${migrations.length}).`,
        { hint: "Upgrade gbt to the version that wrote this database; it was left untouched." },
      );
    }
    for (let version = current; version < migrations.length; version++) {
      db.exec(migrations[version] as string);
      db.prepare(
        "INSERT INTO settlement_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(version + 1);
    }
  }).immediate();
}
