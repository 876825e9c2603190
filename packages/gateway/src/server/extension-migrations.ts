/**
 * Schema migrations for a gateway extension's own tables in gateway.db. Each extension keeps its
 * schema version in its own `<prefix>_meta` table, so extensions evolve independently of the
 * ledger and of each other; a database written by a newer gbt is refused, untouched.
 */
import { GbtError } from "@gbt/protocol";
import type { GatewayDatabase } from "../ledger/gateway-database.js";

export interface ExtensionMigrations {
  /** Table prefix (`<prefix>_meta` holds the version), e.g. "registry". */
  prefix: string;
  /** What the tables are, for messages ("The model registry"). */
  label: string;
  /** SQL of each version, in order; a released entry never changes. */
  migrations: readonly string[];
}

/** Brings the extension's tables to its latest schema; safe to call on every start. */
export function migrateExtensionTables(db: GatewayDatabase, schema: ExtensionMigrations): void {
  if (!/^[a-z][a-z_]{0,31}$/.test(schema.prefix)) {
    throw new GbtError("INTERNAL", `Bad extension table prefix ${JSON.stringify(schema.prefix)}.`);
  }
  const meta = `${schema.prefix}_meta`;
  const { migrations } = schema;
  db.exec(`CREATE TABLE IF NOT EXISTS ${meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT`);
  // IMMEDIATE: two processes starting on one database migrate one after the other, never both.
  db.transaction(() => {
    const row = db.prepare(`SELECT value FROM ${meta} WHERE key = 'schema_version'`).get() as
      | { value: number }
      | undefined;
    const current = row?.value ?? 0;
    if (current > migrations.length) {
      throw new GbtError(
        "CONFIG_INVALID",
        `${schema.label} in ${db.name} has schema ${current}, newer than this gbt understands (${migrations.length}).`,
        {
          details: { path: db.name, schema: current, supported: migrations.length },
          hint: "Upgrade gbt to the version that wrote this database; it was left untouched.",
        },
      );
    }
    const record = db.prepare(
      `INSERT INTO ${meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
    for (let version = current; version < migrations.length; version++) {
      db.exec(migrations[version] as string);
      record.run(version + 1);
    }
  }).immediate();
}
