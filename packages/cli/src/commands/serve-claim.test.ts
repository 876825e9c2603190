/**
 * An unclaimed node, as a new owner meets it (real processes): `gbt serve --gateway` starts in
 * setup mode (loopback only, no pool, the claim code on stdout and in `gbt status`), refuses a
 * wide listener and network mode, and joins its gateway the moment `gbt owner claim` succeeds,
 * with the new owner's jobs taken by its agent without a restart.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { verifyJobResult } from "@gbt/protocol";
import type { Address } from "viem";
import { isAddressEqual } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../testing/serve-process.js";

describe("an unclaimed node: setup mode, then a claim", () => {
  let gatewayHome: string;
  let home: string;
  let gateway: GbtProcess;
  let node: GbtProcess;
  let gatewayUrl: string;
  let adminToken: string;
  let ownerKeyFile: string;
  let owner: Address;
  let nodeAddress: Address;

  const registered = async () => {
    const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    return ((await response.json()) as { data: { nodeAddress: string }[] }).data.some((n) =>
      isAddressEqual(n.nodeAddress as Address, nodeAddress),
    );
  };

  beforeAll(async () => {
    gatewayHome = await tempHome("gbt-claim-gw-");
    await writeFile(join(gatewayHome, "gateway.json"), "{}");
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    gatewayUrl = String(gateway.first.url);
    adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
    home = await tempHome("gbt-claim-node-");
    const ownerKey = generatePrivateKey();
    owner = privateKeyToAccount(ownerKey).address;
    ownerKeyFile = join(home, "owner.key");
    await writeFile(ownerKeyFile, `${ownerKey}\n`, { mode: 0o600 });
    expect((await runCli(["setup", "--yes"], { GBT_HOME: home })).exitCode).toBe(0);
    nodeAddress = (
      JSON.parse(readFileSync(join(home, "config", "config.json"), "utf8")) as { node: { address: Address } }
    ).node.address;
  }, 120_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await gateway?.stop("SIGKILL");
  });

  it("refuses a wide listener and network mode while unclaimed, saying how to claim", async () => {
    const wide = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--json"], { GBT_HOME: home });
    expect(wide.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string; hint: string } }>(wide.stdout).error).toMatchObject({
      code: "CLAIM_REQUIRED",
      hint: expect.stringContaining("gbt owner claim"),
    });
    const network = await runCli(["serve", "--mode", "network", "--port", "0", "--json"], { GBT_HOME: home });
    expect(network.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(network.stdout).error.code).toBe("CLAIM_REQUIRED");
  });

  it("serves loopback in setup mode, shows the code, joins the gateway once claimed", async () => {
    node = await startGbtProcess(
      ["serve", "--port", "0", "--json", "--log-level", "warn", "--threads", "1", "--gateway", gatewayUrl],
      { GBT_HOME: home },
    );
    expect(node.first).toMatchObject({ event: "listening", claimed: false });
    const end = Date.now() + 10_000;
    while (node.lines().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const setup = node.lines()[0] as { event: string; code: string; node: string };
    expect(setup).toMatchObject({
      event: "setup",
      claimed: false,
      code: expect.stringMatching(/^GBT-[0-9A-Z]{4,8}$/),
    });
    // The same code in gbt status.
    const status = onlyJson<{ claim: { claimed: boolean; code: string } }>(
      (await runCli(["status", "--json"], { GBT_HOME: home })).stdout,
    );
    expect(status.claim).toEqual({ claimed: false, code: setup.code });
    // Local inference works; the pool has not heard of it.
    const models = await fetch(`${String(node.first.url)}/v1/models`);
    expect(models.status).toBe(200);
    expect(await registered()).toBe(false);

    // Another node's code is refused by the CLI before anything is signed.
    const wrong = await runCli(
      ["owner", "claim", "GBT-ZZZZ", "--key-file", ownerKeyFile, "--node", String(node.first.url), "--json"],
      { GBT_HOME: home },
    );
    expect(wrong.exitCode).not.toBe(0);
    const claimed = await runCli(
      ["owner", "claim", setup.code, "--key-file", ownerKeyFile, "--node", String(node.first.url), "--json"],
      { GBT_HOME: home },
    );
    expect(claimed.exitCode, claimed.stderr).toBe(0);
    const until = Date.now() + 15_000;
    while (!(await registered())) {
      if (Date.now() > until) throw new Error(`the claimed node did not join:\n${node.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(node.lines().some((line) => line.event === "claimed" && line.owner === owner)).toBe(true);
    const config = JSON.parse(readFileSync(join(home, "config", "config.json"), "utf8")) as {
      node: { owners: string[] };
    };
    expect(config.node.owners).toEqual([owner]);
    // The new owner's job reaches the agent through the gateway at once: owners were reloaded and published.
    const created = await runCli(["job", "create", "status.read", "--key-file", ownerKeyFile], {
      GBT_HOME: home,
    });
    expect(created.exitCode, created.stderr).toBe(0);
    let response: Response | undefined;
    const relayUntil = Date.now() + 15_000;
    for (;;) {
      response = await fetch(`${gatewayUrl}/v1/nodes/${nodeAddress}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: created.stdout,
      });
      if (response.status === 200 || Date.now() > relayUntil) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const outcome = (await response.json()) as { state: string; result: unknown };
    expect(response.status, JSON.stringify(outcome)).toBe(200);
    const result = await verifyJobResult(outcome.result, { job: JSON.parse(created.stdout) });
    expect(isAddressEqual(result.message.issuer, owner)).toBe(true);
  });
});
