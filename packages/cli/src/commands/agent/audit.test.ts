import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openAuditLog } from "@gbt/agent";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

const ISSUER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** Writes `n` entries to the audit log at its default place under `home`. */
function buildLog(home: string, n: number): string {
  const path = join(home, "data", "agent", "audit.db");
  const log = openAuditLog(path);
  for (let i = 1; i <= n; i++) {
    log.append({
      jobId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      type: "model.pull",
      issuer: ISSUER,
      state: i % 2 === 0 ? "rejected" : "succeeded",
      ...(i % 2 === 0 ? { code: "REPLAYED" } : {}),
      detail: { attempt: i },
    });
  }
  log.close();
  return path;
}

interface AuditJson {
  file: string;
  total: number;
  entries: { seq: number; state: string; code: string | null }[];
  verified?: { ok: boolean; entries: number };
}

describe("gbt agent audit (real CLI process, no TTY)", () => {
  it("an empty home: 0 entries, verified, exit 0", async () => {
    const home = await tempHome("gbt-audit-cli-");
    const result = await runCli(["agent", "audit", "--verify", "--json"], { GBT_HOME: home });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(onlyJson<AuditJson>(result.stdout)).toMatchObject({
      total: 0,
      entries: [],
      verified: { ok: true, entries: 0 },
    });
  });

  it("--verify --json passes on an intact log, then exits 4 naming the tampered seq", async () => {
    const home = await tempHome("gbt-audit-cli-");
    const path = buildLog(home, 20);
    const ok = await runCli(["agent", "audit", "--verify", "--json", "--limit", "5"], { GBT_HOME: home });
    expect(ok.exitCode, ok.stderr).toBe(0);
    const body = onlyJson<AuditJson>(ok.stdout);
    expect(body.total).toBe(20);
    expect(body.entries.map((e) => e.seq)).toEqual([16, 17, 18, 19, 20]);
    expect(body.entries[0]).toMatchObject({ state: "rejected", code: "REPLAYED" });
    expect(body.verified).toEqual({ ok: true, entries: 20 });

    const raw = new Database(path);
    raw.exec("DROP TRIGGER audit_log_no_update");
    raw.exec(`UPDATE audit_log SET state = 'succeeded', code = NULL WHERE seq = 12`);
    raw.close();

    const tampered = await runCli(["agent", "audit", "--verify", "--json"], { GBT_HOME: home });
    expect(tampered.exitCode).toBe(4);
    const { error } = onlyJson<{
      error: { code: string; message: string; details: Record<string, unknown> };
    }>(tampered.stdout);
    expect(error.code).toBe("AUDIT_TAMPERED");
    expect(error.details).toMatchObject({ firstTampered: 12, reason: "hash mismatch" });
    expect(error.message).toContain("#12");

    const human = await runCli(["agent", "audit", "--verify", "--file", path], {});
    expect(human.exitCode).toBe(4);
    expect(human.stdout).toBe("");
    expect(human.stderr).toContain("Audit entry #12 was altered (hash mismatch)");
  });

  it("prints a table without --json and reads --file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gbt-audit-file-"));
    const path = buildLog(dir, 3);
    const result = await runCli(["agent", "audit", "--file", path], { GBT_HOME: dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain("SEQ");
    expect(result.stdout).toContain("0x7099…79C8");
    expect(result.stdout).toContain("REPLAYED");
  });
});
