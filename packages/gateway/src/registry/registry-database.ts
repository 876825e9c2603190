/**
 * The model registry's tables in gateway.db. The gateway's own migrations own `user_version`, so
 * the registry keeps its schema version in its own meta row; its migrations are append-only, they
 * run in one immediate transaction, and running them again (every start) changes nothing.
 */

import { migrate } from "@gbt/store";
import type { GatewayDatabase } from "../gateway-database.js";

export const registryMigrations: readonly string[] = [
  `CREATE TABLE registry_models (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     publisher TEXT NOT NULL,
     manifest_hash TEXT NOT NULL,
     signed_json TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'delisted')),
     created_at TEXT NOT NULL,
     submitted_at INTEGER NOT NULL,
     status_changed_at INTEGER NOT NULL,
     status_reason TEXT,
     artifact_count INTEGER NOT NULL,
     size_bytes INTEGER NOT NULL,
     PRIMARY KEY (name, version)
   ) STRICT;
   CREATE INDEX registry_models_by_status ON registry_models (status, name);
   CREATE TABLE registry_artifacts (
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     idx INTEGER NOT NULL,
     sha256 TEXT NOT NULL,
     size INTEGER NOT NULL,
     PRIMARY KEY (name, version, idx),
     FOREIGN KEY (name, version) REFERENCES registry_models (name, version)
   ) STRICT;
   CREATE INDEX registry_artifacts_by_sha256 ON registry_artifacts (sha256);
   -- Every status change, for audit: who (admin or publisher) moved what, when and why.
   CREATE TABLE registry_events (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     status TEXT NOT NULL,
     reason TEXT,
     at INTEGER NOT NULL
   ) STRICT;`,
];

/** Brings the registry tables to the latest schema; safe to call on every start. */
export function migrateModelRegistry(
  db: GatewayDatabase,
  migrations: readonly string[] = registryMigrations,
): void {
  migrate(db, { prefix: "registry", label: "The model registry", migrations });
}
