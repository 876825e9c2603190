/**
 * The agent's durable state: one SQLite file opened and migrated by @gbt/store (WAL,
 * `user_version` as the schema version). `seen_jobs` is the replay store and
 * the idempotency record of every accepted job; `issuer_nonces` holds each issuer's highest nonce.
 */
import { openDatabase, type SqliteDatabase } from "@gbt/store";

export type AgentDatabase = SqliteDatabase;

/** Ordered migrations of the agent database; append only, never edit a shipped one. */
export const agentMigrations: readonly string[] = [
  `CREATE TABLE seen_jobs (
     job_id TEXT PRIMARY KEY,
     issuer TEXT NOT NULL,
     nonce INTEGER NOT NULL,
     digest TEXT NOT NULL,
     type TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     state TEXT NOT NULL,
     result_json TEXT
   ) STRICT;
   CREATE INDEX seen_jobs_by_issuer ON seen_jobs (issuer, nonce);
   CREATE TABLE issuer_nonces (
     issuer TEXT PRIMARY KEY,
     last_nonce INTEGER NOT NULL
   ) STRICT;`,
];

/** Opens (creating if needed) the agent database at `path` and brings it to the latest schema. */
export function openAgentDatabase(path: string): AgentDatabase {
  return openDatabase(path, { label: "The agent database", migrations: agentMigrations });
}
