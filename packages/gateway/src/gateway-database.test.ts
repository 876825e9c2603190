import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  consumerAccount,
  gatewayMigrations,
  openGatewayDatabase,
  providerAccount,
} from "./gateway-database.js";

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-gateway-db-"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("openGatewayDatabase", () => {
  it("creates a private directory and a WAL database at the latest schema", () => {
    const path = join(dir, "state", "gateway.db");
    const db = openGatewayDatabase(path);
    try {
      expect(statSync(join(dir, "state")).mode & 0o777).toBe(0o700);
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
      expect(db.pragma("synchronous", { simple: true })).toBe(1); // NORMAL
      expect(db.pragma("busy_timeout", { simple: true })).toBe(5000);
      expect(db.pragma("user_version", { simple: true })).toBe(gatewayMigrations.length);
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .all()
        .map((row) => (row as { name: string }).name);
      expect(tables).toEqual([
        "accounts",
        "api_keys",
        "ledger_entries",
        "ledger_transactions",
        "settlement_dead_letters",
        "usage_records",
      ]);
    } finally {
      db.close();
    }
    // Reopening runs nothing twice.
    openGatewayDatabase(path).close();
  });

  it("refuses a database written by a newer gbt, and leaves it untouched", () => {
    const path = join(dir, "gateway.db");
    const db = openGatewayDatabase(path);
    db.pragma(`user_version = ${gatewayMigrations.length + 1}`);
    db.close();
    expect(() => openGatewayDatabase(path)).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        message: expect.stringMatching(/newer than this gbt/),
      }),
    );
  });

  it("rejects a zero-amount entry and an unknown transaction kind at the schema level", () => {
    const db = openGatewayDatabase(join(dir, "gateway.db"));
    try {
      expect(() =>
        db.prepare("INSERT INTO ledger_transactions (kind, created_at) VALUES ('gift', 0)").run(),
      ).toThrow(/CHECK/);
      db.prepare("INSERT INTO ledger_transactions (kind, created_at) VALUES ('adjust', 0)").run();
      expect(() =>
        db.prepare("INSERT INTO ledger_entries (transaction_id, account, amount) VALUES (1, 'x', 0)").run(),
      ).toThrow(/CHECK/);
    } finally {
      db.close();
    }
  });

  it("names ledger accounts", () => {
    expect(consumerAccount("acct_1")).toBe("consumer:acct_1");
    expect(providerAccount("0xAbCdEf0000000000000000000000000000000001")).toBe(
      "provider:0xabcdef0000000000000000000000000000000001",
    );
  });
});
