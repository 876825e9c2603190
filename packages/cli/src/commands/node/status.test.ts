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
import { GATEWAY_INFO_PATH, GATEWAY_REGISTER_PATH, type GatewayInfo, signObject } from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli } from "../../testing/run-cli.js";

const nodeAccount = privateKeyToAccount(generatePrivateKey());
let dir: string;
let gateway: GatewayServer;
let evidenceId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-node-status-cli-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      verification: { enabled: false },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-cli-tests-0123456789",
    logger: pino({ level: "silent" }),
    verification: createVerification(),
  });
  // The node registers as `gbt serve --gateway` would (a signed NodeRegistration).
  const info = (await (await fetch(new URL(GATEWAY_INFO_PATH, gateway.url))).json()) as GatewayInfo;
  const now = Math.floor(Date.now() / 1000);
  const registration = await signObject(nodeAccount, {
    kind: "NodeRegistration",
    chainId: info.chainId,
    message: {
      node: nodeAccount.address,
      gateway: info.address,
      url: "http://127.0.0.1:9",
      capacity: 1,
      nonce: 1,
      issuedAt: now,
      expiresAt: now + 60,
    },
    payload: { models: [{ id: "m" }], backend: { kind: "embedded" }, benchmark: null },
  });
  const registered = await fetch(new URL(GATEWAY_REGISTER_PATH, gateway.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(registration),
  });
  expect(registered.status).toBe(200);
  evidenceId = new EvidenceStore(gateway.db, Date.now).addEvidence({
    instanceId: nodeAccount.address.toLowerCase(),
    node: nodeAccount.address,
    kind: "signature_mismatch",
    summary: "Its usage receipt is not signed by its own key.",
    details: {},
  }).id;
});

afterAll(async () => {
  await gateway?.close(1000);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("gbt node status (real CLI process against a gateway on loopback)", () => {
  it("--json prints the gateway's view of the node: tier, reputation and evidence ids", async () => {
    const result = await runCli(
      ["node", "status", "--gateway", gateway.url, "--node", nodeAccount.address, "--json"],
      { GBT_HOME: dir },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const trust = onlyJson<{
      id: string;
      tier: string;
      reputation: number;
      evidence: string[];
      reasons: string[];
    }>(result.stdout);
    expect(trust).toMatchObject({
      id: nodeAccount.address.toLowerCase(),
      tier: "community",
      evidence: [evidenceId],
    });
    expect(trust.reputation).toBeGreaterThanOrEqual(0);
    expect(trust.reputation).toBeLessThanOrEqual(1);
    expect(trust.reasons).toContain("1 fraud evidence record(s) in the window");

    const human = await runCli(["node", "status", "--gateway", gateway.url, "--node", nodeAccount.address], {
      GBT_HOME: dir,
    });
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain("Tier        community");
    expect(human.stdout).toContain(evidenceId);
  });

  it("fails with its own exit codes: unknown node, bad address, unreachable gateway, no config", async () => {
    const unknown = await runCli(
      [
        "node",
        "status",
        "--gateway",
        gateway.url,
        "--node",
        privateKeyToAccount(generatePrivateKey()).address,
        "--json",
      ],
      { GBT_HOME: dir },
    );
    expect(unknown.exitCode).toBe(8);
    expect(onlyJson<{ error: { code: string } }>(unknown.stdout).error.code).toBe("NOT_FOUND");

    const bad = await runCli(["node", "status", "--gateway", gateway.url, "--node", "0x123", "--json"], {
      GBT_HOME: dir,
    });
    expect(bad.exitCode).toBe(6);

    const down = await runCli(
      ["node", "status", "--gateway", "http://127.0.0.1:9", "--node", nodeAccount.address, "--json"],
      { GBT_HOME: dir },
    );
    expect(down.exitCode).toBe(5);

    const noConfig = await runCli(["node", "status", "--json"], {
      GBT_HOME: mkdtempSync(join(tmpdir(), "gbt-empty-")),
    });
    expect(noConfig.exitCode).not.toBe(0);
    expect(noConfig.exitCode).not.toBe(1);
  });
});
