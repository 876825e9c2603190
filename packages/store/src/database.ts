/**
 * SQLite for every gbt database: better-sqlite3 in WAL mode, opened the same way everywhere, and
 * one migration routine. A schema is an ordered list of SQL scripts, append only; the number that
 * ran is kept either in `PRAGMA user_version` (a database's own schema) or, for a feature that
 * shares a database with others (the gateway's registry, settlement, verification tables), in its
 * own `<prefix>_meta` table, so that features evolve independently. Migrations run inside one
 * IMMEDIATE transaction: two processes starting on one database migrate one after the other,
 * never both; a database written by a newer gbt is refused, untouched.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { GbtError } from "@gbt/protocol";
import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;

export interface Migrations {
  /** What the schema is, for messages ("The gateway database", "The model registry"). */
  label: string;
  /** SQL of each version, in order; a released entry never changes. */
  migrations: readonly string[];
  /** Keep the version in `<prefix>_meta` instead of `PRAGMA user_version` (shared databases). */
  prefix?: string;
}

/** Opens (creating if needed, directory 0700) a SQLite database in WAL mode and migrates it. */
export function openDatabase(path: string, schema: Migrations): SqliteDatabase {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    migrate(db, schema);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** Brings `schema` to its latest version on `db`; safe to call on every start. */
export function migrate(db: SqliteDatabase, schema: Migrations): void {
  const { migrations, prefix } = schema;
  let read: () => number;
  let write: (version: number) => void;
  if (prefix === undefined) {
    read = () => db.pragma("user_version", { simple: true }) as number;
    write = (version) => db.pragma(`user_version = ${version}`);
  } else {
    if (!/^[a-z][a-z_]{0,31}$/.test(prefix)) {
      throw new GbtError("INTERNAL", `Bad schema table prefix ${JSON.stringify(prefix)}.`);
    }
    const meta = `${prefix}_meta`;
    db.exec(`CREATE TABLE IF NOT EXISTS ${meta} (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT`);
    const select = db.prepare(`SELECT value FROM ${meta} WHERE key = 'schema_version'`);
    const record = db.prepare(
      `INSERT INTO ${meta} (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
    read = () => (select.get() as { value: number } | undefined)?.value ?? 0;
    write = (version) => record.run(version);
  }
  db.transaction(() => {
    const current = read();
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
    for (let version = current; version < migrations.length; version++) {
      db.exec(migrations[version] as string);
      write(version + 1);
    }
  }).immediate();
}
