/**
 * The node's durable state: one SQLite file (better-sqlite3, WAL) with migrations in code.
 * `PRAGMA user_version` records the schema version; each migration runs in one transaction.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export type NodeDatabase = Database.Database;

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

/** Opens (creating if needed) a SQLite database in WAL mode and brings it to the latest schema. */
export function openDatabase(path: string, migrations: readonly string[] = nodeMigrations): NodeDatabase {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, migrations);
  return db;
}

function migrate(db: NodeDatabase, migrations: readonly string[]): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `database ${db.name} has schema ${current}, newer than this gbt (${migrations.length}); upgrade gbt`,
    );
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
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
