/**
 * The gateway's durable state: one SQLite file (better-sqlite3, WAL) holding consumer accounts,
 * their API keys, and a double-entry ledger of micro-credits, opened and migrated by @gbt/store
 * (`PRAGMA user_version` is this schema's version; features keep theirs in `<prefix>_meta`).
 *
 * Ledger entries are signed (debit negative, credit positive) and every transaction sums to
 * zero, so a balance is the sum of an account's entries and the whole ledger sums to zero.
 */
import { join } from "node:path";
import { openDatabase, type SqliteDatabase } from "@gbt/store";

export type GatewayDatabase = SqliteDatabase;

/** Ordered migrations; append only, never edit a shipped one. */
export const gatewayMigrations: readonly string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts (id),
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     key_hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   ) STRICT;
   CREATE INDEX api_keys_by_account ON api_keys (account_id);
   CREATE TABLE ledger_transactions (
     id INTEGER PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('grant', 'usage', 'adjust')),
     request_id TEXT UNIQUE,
     created_at INTEGER NOT NULL,
     memo TEXT
   ) STRICT;
   CREATE TABLE ledger_entries (
     transaction_id INTEGER NOT NULL REFERENCES ledger_transactions (id),
     account TEXT NOT NULL,
     amount INTEGER NOT NULL CHECK (amount <> 0)
   ) STRICT;
   -- (account, amount) covers the balance query: SUM(amount) WHERE account = ? reads the index only.
   CREATE INDEX ledger_entries_by_account ON ledger_entries (account, amount);
   CREATE INDEX ledger_entries_by_transaction ON ledger_entries (transaction_id);
   -- key_id has no foreign key on purpose: a usage record is a fact to keep, never to refuse.
   CREATE TABLE usage_records (
     request_id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts (id),
     key_id TEXT,
     node TEXT NOT NULL,
     model TEXT NOT NULL,
     prompt_tokens INTEGER NOT NULL CHECK (prompt_tokens >= 0),
     completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
     debit INTEGER NOT NULL CHECK (debit >= 0),
     provider_credit INTEGER NOT NULL CHECK (provider_credit >= 0),
     platform_credit INTEGER NOT NULL CHECK (platform_credit >= 0),
     receipt_status TEXT NOT NULL CHECK (receipt_status IN ('valid', 'missing', 'invalid', 'mismatch')),
     receipt_json TEXT,
     gateway_signature TEXT,
     multipliers_json TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX usage_records_by_account ON usage_records (account_id, created_at);`,
  // Settlements given up on (billing/settlement-journal.ts): the journalled record and the last error.
  `CREATE TABLE settlement_dead_letters (
     request_id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL,
     node TEXT NOT NULL,
     model TEXT NOT NULL,
     served_at INTEGER NOT NULL,
     record TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     error_code TEXT,
     error_message TEXT NOT NULL,
     failed_at INTEGER NOT NULL,
     requeued_at INTEGER
   ) STRICT;`,
];

/** Opens (creating if needed) the gateway database in WAL mode and brings it to the latest schema. */
export function openGatewayDatabase(
  path: string,
  migrations: readonly string[] = gatewayMigrations,
): GatewayDatabase {
  return openDatabase(path, { label: "The gateway database", migrations });
}

/** Runs `fn` on the gateway database of a data dir, opening and closing it (the CLI's offline access). */
export function withGatewayDatabase<T>(dataDir: string, fn: (db: GatewayDatabase) => T): T {
  const db = openGatewayDatabase(join(dataDir, "gateway.db"));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Ledger account names. Consumers and providers get one each; the rest are singletons. */
export const TREASURY_ACCOUNT = "treasury";
export const PLATFORM_ACCOUNT = "platform";
/** The provider share of a request whose receipt was missing or invalid: held, not paid. */
export const SUSPENSE_ACCOUNT = "suspense";

/** The ledger account of a consumer account (`acct_…`). */
export function consumerAccount(accountId: string): string {
  return `consumer:${accountId}`;
}

/** The ledger account of a provider node, keyed by its lowercased address. */
export function providerAccount(nodeAddress: string): string {
  return `provider:${nodeAddress.toLowerCase()}`;
}
