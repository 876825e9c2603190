import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createVerification,
  EvidenceStore,
  type GatewayServer,
  parseGatewayConfig,
  startGatewayServer,
} from "@gbt/gateway";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli } from "../../../testing/run-cli.js";

const ADMIN = "admin-token-for-cli-tests-0123456789";
const node = privateKeyToAccount(generatePrivateKey()).address;
let dir: string;
let gateway: GatewayServer;
let fraudId: string;
let qualityId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-evidence-cli-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      verification: { enabled: false },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    verification: createVerification(),
  });
  // Records as the verification extension writes them (it shares the gateway's database).
  const store = new EvidenceStore(gateway.db, Date.now);
  const instanceId = node.toLowerCase();
  fraudId = store.addEvidence({
    instanceId,
    node,
    kind: "benchmark_spoofed",
    summary: "Measured 50.0 tok/s against a signed claim of 5000.0 tok/s.",
    details: { claimedTokPerSec: 5000, measuredTokPerSec: 50 },
  }).id;
  qualityId = store.addEvidence({
    instanceId: "0x0000000000000000000000000000000000000002",
    node: "0x0000000000000000000000000000000000000002",
    kind: "canary_mismatch",
    summary: "Its greedy seeded answer differs from the known one.",
    details: { seed: 7 },
  }).id;
});

afterAll(async () => {
  await gateway?.close(1000);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ GBT_GATEWAY_ADMIN_TOKEN: ADMIN, GBT_HOME: dir });

describe("gbt gateway evidence (real CLI process against a gateway on loopback)", () => {
  it("list --json prints every record, newest first; --node filters; fraud carries its slashing proposal", async () => {
    const all = await runCli(["gateway", "evidence", "list", "--url", gateway.url, "--json"], env());
    expect(all.exitCode, all.stderr).toBe(0);
    const records = onlyJson<{ id: string; severity: string; slashingProposal: { status: string } | null }[]>(
      all.stdout,
    );
    expect(records.map((r) => r.id).sort()).toEqual([fraudId, qualityId].sort());
    expect(records.find((r) => r.id === fraudId)).toMatchObject({
      severity: "fraud",
      slashingProposal: { status: "proposed" },
    });
    expect(records.find((r) => r.id === qualityId)).toMatchObject({
      severity: "quality",
      slashingProposal: null,
    });

    const one = await runCli(
      ["gateway", "evidence", "list", "--url", gateway.url, "--node", node, "--json"],
      env(),
    );
    expect(onlyJson<{ id: string }[]>(one.stdout).map((r) => r.id)).toEqual([fraudId]);

    const human = await runCli(["gateway", "evidence", "list", "--url", gateway.url], env());
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain(fraudId);
    expect(human.stdout).toContain("benchmark_spoofed");
  });

  it("show prints the evidence hash a slashing proposal names; bad ids and tokens fail with their exit codes", async () => {
    const shown = await runCli(
      ["gateway", "evidence", "show", fraudId, "--url", gateway.url, "--json"],
      env(),
    );
    expect(shown.exitCode, shown.stderr).toBe(0);
    const record = onlyJson<{ hash: string; slashingProposal: { evidenceHash: string } }>(shown.stdout);
    expect(record.hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(record.slashingProposal.evidenceHash).toBe(record.hash);

    const human = await runCli(["gateway", "evidence", "show", fraudId, "--url", gateway.url], env());
    expect(human.stdout).toContain(record.hash);

    const malformed = await runCli(
      ["gateway", "evidence", "show", "../../etc", "--url", gateway.url, "--json"],
      env(),
    );
    expect(malformed.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(malformed.stdout).error.code).toBe("INVALID_INPUT");

    const missing = await runCli(
      ["gateway", "evidence", "show", "ev_0000000000000000", "--url", gateway.url, "--json"],
      env(),
    );
    expect(missing.exitCode).toBe(8);

    const wrongToken = await runCli(["gateway", "evidence", "list", "--url", gateway.url, "--json"], {
      ...env(),
      GBT_GATEWAY_ADMIN_TOKEN: "not-the-token",
    });
    expect(wrongToken.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(wrongToken.stdout).error.code).toBe("UNAUTHORIZED");
  });
});
