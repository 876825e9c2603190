/**
 * The node's durable state: one SQLite file, opened and migrated by @gbt/store.
 */
import { openDatabase, type SqliteDatabase } from "@gbt/store";

export type NodeDatabase = SqliteDatabase;

/** Ordered migrations; append only, never edit a shipped one. */
export const nodeMigrations: readonly string[] = [
  `CREATE TABLE meta (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL
   ) STRICT;`,
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     prefix TEXT NOT NULL,
     key_hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   ) STRICT;`,
  // Signed benchmark records (`gbt node benchmark`), one row each, the signed JSON kept as signed.
  `CREATE TABLE benchmark_records (
     id TEXT PRIMARY KEY,
     issued_at INTEGER NOT NULL,
     mode TEXT NOT NULL,
     backend TEXT NOT NULL,
     model_id TEXT NOT NULL,
     model_digest TEXT NOT NULL,
     decode_tok_per_sec REAL NOT NULL,
     eligible_capacity INTEGER NOT NULL,
     signed_json TEXT NOT NULL
   ) STRICT;
   CREATE INDEX benchmark_records_by_time ON benchmark_records (issued_at);`,
];

/** Opens (creating if needed) the node database and brings it to the latest schema. */
export function openNodeDatabase(path: string): NodeDatabase {
  return openDatabase(path, { label: "The node database", migrations: nodeMigrations });
}

/** Reads a meta value. */
export function getMeta(db: NodeDatabase, key: string): string | undefined {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return row?.value;
}

/** Writes a meta value (insert or replace). */
export function setMeta(db: NodeDatabase, key: string, value: string): void {
  db.prepare(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(key, value);
}
