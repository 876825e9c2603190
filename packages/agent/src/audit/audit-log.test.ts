import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashPayload } from "@gbt/protocol";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { GENESIS_HASH, openAuditLog } from "./audit-log.js";
import { readAuditLog } from "./read-audit-log.js";

const ISSUER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gbt-audit-"));
  return join(dir, "agent", "audit.db");
}

/** A log of `n` entries, alternating outcomes, with a fixed clock. */
async function logOf(n: number): Promise<string> {
  const path = await tempFile();
  let clock = 1_700_000_000_000;
  const log = openAuditLog(path, { now: () => clock++ });
  for (let i = 1; i <= n; i++) {
    const rejected = i % 3 === 0;
    log.append({
      jobId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      type: "model.pull",
      issuer: ISSUER,
      state: rejected ? "rejected" : "succeeded",
      ...(rejected ? { code: "EXPIRED" } : {}),
      detail: { attempt: i, note: `job ${i}` },
      ...(rejected ? {} : { result: { ok: true, bytes: i * 1000 } }),
    });
  }
  log.close();
  return path;
}

/** Edits the file the way an attacker with write access would: triggers dropped, raw SQL. */
function tamper(path: string, sql: string): void {
  const raw = new Database(path);
  raw.exec("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;");
  raw.exec(sql);
  raw.close();
}

describe("audit log", () => {
  it("appends a chain of 50 entries that verifies, each linked to the one before", async () => {
    const path = await logOf(50);
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: true, entries: 50 });
    const entries = log.list({ limit: 100 });
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(entries[0]?.prevHash).toBe(GENESIS_HASH);
    for (let i = 1; i < entries.length; i++) expect(entries[i]?.prevHash).toBe(entries[i - 1]?.hash);
    expect(log.head()).toEqual({ seq: 50, hash: entries[49]?.hash });
    expect(entries[2]).toMatchObject({ state: "rejected", code: "EXPIRED", result: null });
    expect(entries[0]).toMatchObject({ state: "succeeded", code: null, result: { ok: true, bytes: 1000 } });
    expect(log.list({ afterSeq: 45, limit: 2 }).map((e) => e.seq)).toEqual([46, 47]);
    log.close();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(path, ".."))).mode & 0o777).toBe(0o700);
  });

  it("refuses UPDATE and DELETE at the SQL level", async () => {
    const path = await logOf(3);
    const raw = new Database(path);
    expect(() => raw.prepare("UPDATE audit_log SET state = 'succeeded' WHERE seq = 3").run()).toThrow(
      /append-only/,
    );
    expect(() => raw.prepare("DELETE FROM audit_log WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => raw.prepare("DELETE FROM audit_log").run()).toThrow(/append-only/);
    raw.close();
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: true, entries: 3 });
    log.close();
  });

  it("names row 17 when its detail was edited", async () => {
    const path = await logOf(50);
    tamper(
      path,
      `UPDATE audit_log SET detail_json = '{"attempt":17,"note":"nothing happened"}' WHERE seq = 17`,
    );
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: false, firstTampered: 17, reason: "hash mismatch", entries: 50 });
    log.close();
  });

  it("names row 17 when its hash was edited", async () => {
    const path = await logOf(50);
    tamper(path, `UPDATE audit_log SET hash = '0x${"ab".repeat(32)}' WHERE seq = 17`);
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: false, firstTampered: 17, reason: "hash mismatch", entries: 50 });
    log.close();
  });

  it("names the next row as a broken link when a row was rewritten with a consistent hash", async () => {
    const path = await logOf(20);
    // Row 17 rewritten by someone who recomputed its hash: only 18's link gives it away.
    const raw = new Database(path, { readonly: true });
    const row17 = raw.prepare("SELECT * FROM audit_log WHERE seq = 17").get() as Record<string, unknown>;
    raw.close();
    const forgedHash = hashPayload({
      seq: 17,
      at: row17.at,
      jobId: row17.job_id,
      type: row17.type,
      issuer: row17.issuer,
      state: "succeeded",
      code: null,
      detail: { attempt: 17, note: "forged" },
      result: JSON.parse(String(row17.result_json)),
      prevHash: row17.prev_hash,
    });
    tamper(
      path,
      `UPDATE audit_log SET state = 'succeeded', code = NULL, detail_json = '{"attempt":17,"note":"forged"}', hash = '${forgedHash}' WHERE seq = 17`,
    );
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: false, firstTampered: 18, reason: "broken link", entries: 20 });
    log.close();
  });

  it("names row 30 as a gap when it was deleted", async () => {
    const path = await logOf(50);
    tamper(path, "DELETE FROM audit_log WHERE seq = 30");
    const log = openAuditLog(path);
    expect(log.verify()).toEqual({ ok: false, firstTampered: 30, reason: "gap in sequence", entries: 49 });
    log.close();
  });

  it("redacts secrets from details before storing them", async () => {
    const path = await tempFile();
    const log = openAuditLog(path);
    const key = `0x${"1f".repeat(32)}`;
    log.append({
      jobId: "j1",
      type: "keys.rotate",
      issuer: ISSUER,
      state: "failed",
      code: "WRONG_PASSPHRASE",
      detail: {
        passphrase: "hunter2",
        privateKey: key,
        nested: { Authorization: "Bearer abc", apiToken: "t0k", items: [`key was ${key}`] },
        promptTokens: 12,
        token: null,
      },
    });
    const [entry] = log.list();
    expect(entry?.detail).toEqual({
      passphrase: "[redacted]",
      privateKey: "[redacted]",
      nested: { Authorization: "[redacted]", apiToken: "[redacted]", items: ["key was [redacted]"] },
      promptTokens: 12,
      token: null,
    });
    expect(log.verify()).toEqual({ ok: true, entries: 1 });
    log.close();
    const raw = new Database(path, { readonly: true });
    const text = JSON.stringify(raw.prepare("SELECT * FROM audit_log").all());
    raw.close();
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("1f1f1f");
  });

  it("readAuditLog: a missing log is empty and verified, and is not created", async () => {
    const path = await tempFile();
    expect(readAuditLog({ file: path, verify: true })).toEqual({
      file: path,
      total: 0,
      entries: [],
      verified: { ok: true, entries: 0 },
    });
    await expect(stat(path)).rejects.toThrow();
  });

  it("readAuditLog: shows the newest entries and throws AUDIT_TAMPERED naming the seq", async () => {
    const path = await logOf(50);
    const read = readAuditLog({ file: path, limit: 5, verify: true });
    expect(read.total).toBe(50);
    expect(read.entries.map((e) => e.seq)).toEqual([46, 47, 48, 49, 50]);
    expect(read.verified).toEqual({ ok: true, entries: 50 });
    tamper(path, `UPDATE audit_log SET issuer = '0x0000000000000000000000000000000000000001' WHERE seq = 17`);
    expect(() => readAuditLog({ file: path, verify: true })).toThrow(
      expect.objectContaining({
        code: "AUDIT_TAMPERED",
        details: expect.objectContaining({ firstTampered: 17 }),
      }),
    );
    expect(readAuditLog({ file: path }).total).toBe(50);
  });

  it("defaults to <dataDir>/agent/audit.db under GBT_HOME", async () => {
    const home = await mkdtemp(join(tmpdir(), "gbt-audit-home-"));
    expect(readAuditLog({ env: { GBT_HOME: home } }).file).toBe(join(home, "data", "agent", "audit.db"));
  });
});
