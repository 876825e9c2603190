import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GatewayServer, parseGatewayConfig, startGatewayServer } from "@gbt/gateway";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli } from "../../testing/run-cli.js";

const ADMIN = "admin-token-for-cli-tests-0123456789";
let dir: string;
let gateway: GatewayServer;
let accountId: string;
let keyId: string;
const env = () => ({ GBT_HOME: dir, GBT_GATEWAY_ADMIN_TOKEN: ADMIN });
const limits = (...args: string[]) => runCli(["gateway", "limits", "--url", gateway.url, ...args], env());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-limits-cli-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      verification: { enabled: false },
      limits: { perKey: { concurrentRequests: 8 } },
    }),
    dataDir: join(dir, "gateway"),
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
  });
  const account = gateway.accounts.createAccount({ name: "alice" });
  accountId = account.id;
  keyId = gateway.accounts.createApiKey(account.id, "ci").id;
});

afterAll(async () => {
  await gateway?.close(1000);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("gbt gateway limits", () => {
  it("sets a key's and an account's limits over the defaults, shows them, and clears them", async () => {
    const set = await limits("--key", keyId, "--rpm", "60", "--tpm", "100000", "--json");
    expect(set.exitCode).toBe(0);
    expect(onlyJson(set.stdout)).toEqual({
      kind: "key",
      id: keyId,
      limits: { requestsPerMinute: 60, tokensPerMinute: 100_000, concurrentRequests: 8 },
    });
    const budget = await limits("--account", accountId, "--budget", "2.5", "--period", "day");
    expect(budget.exitCode).toBe(0);
    expect(budget.stdout).toContain("budget 2.50 credits/day");
    // "none" removes one limit, over the gateway.json default too.
    const none = await limits("--key", keyId, "--concurrent", "none", "--json");
    expect(onlyJson(none.stdout)).toMatchObject({
      limits: { requestsPerMinute: 60, tokensPerMinute: 100_000 },
    });
    expect((onlyJson(none.stdout) as { limits: object }).limits).not.toHaveProperty("concurrentRequests");
    const shown = await limits();
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain("Every key:     8 at once");
    expect(shown.stdout).toContain(keyId);
    expect(shown.stdout).toContain("60 requests/min, 100000 tokens/min");
    const cleared = await limits("--key", keyId, "--clear", "--json");
    expect(onlyJson(cleared.stdout)).toEqual({ kind: "key", id: keyId, limits: { concurrentRequests: 8 } });
  });

  it("refuses what it cannot mean, saying what to do, and sends nothing", async () => {
    const noSubject = await limits("--rpm", "5");
    expect(noSubject.exitCode).toBe(2);
    expect(noSubject.stderr).toContain("--key KEY_ID or --account ACCOUNT_ID");
    const bad = await limits("--key", keyId, "--rpm", "1.5");
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--rpm must be a whole number ≥ 1 or "none"');
    const keyBudget = await limits("--key", keyId, "--budget", "1");
    expect(keyBudget.exitCode).not.toBe(0);
    expect(keyBudget.stderr).toContain("A budget is an account's");
    const listed = onlyJson((await limits("--json")).stdout) as { overrides: { id: string }[] };
    expect(listed.overrides.map((entry) => entry.id)).not.toContain(keyId);
  });
});
