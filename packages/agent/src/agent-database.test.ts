import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { agentMigrations, openAgentDatabase } from "./agent-database.js";

describe("openAgentDatabase", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("creates the replay tables and records the schema version", () => {
    const dir = mkdtempSync(join(tmpdir(), "gbt-agent-db-"));
    dirs.push(dir);
    const db = openAgentDatabase(join(dir, "agent.db"));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[];
    expect(tables.map((t) => t.name)).toEqual(["issuer_nonces", "seen_jobs"]);
    expect(db.pragma("user_version", { simple: true })).toBe(agentMigrations.length);
    db.close();
  });

  it("reopens an existing file without re-running migrations", () => {
    const dir = mkdtempSync(join(tmpdir(), "gbt-agent-db-"));
    dirs.push(dir);
    const path = join(dir, "agent.db");
    const first = openAgentDatabase(path);
    first.prepare("INSERT INTO issuer_nonces (issuer, last_nonce) VALUES (?, ?)").run("0xabc", 7);
    first.close();
    const second = openAgentDatabase(path);
    expect(second.prepare("SELECT last_nonce FROM issuer_nonces").get()).toEqual({ last_nonce: 7 });
    second.close();
  });
});
