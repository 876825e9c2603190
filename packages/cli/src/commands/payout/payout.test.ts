/**
 * The whole loop on real parts: `gbt chain dev` (real anvil, contracts deployed), `gbt gateway
 * serve` with settlement on, `gbt serve` (a real node on the generated test model) in the same gbt
 * home, `gbt stake deposit`, paid traffic through the gateway, an epoch settled on chain, and
 * `gbt payout claim` moving exactly what the ledger says the node earned; a second claim pays
 * nothing, a forged proof reverts, an early withdraw is refused, a wrong chain is named.
 */
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { claim, type GbtDeployment, readGbtBalance, startAnvil } from "@gbt/contracts";
import { isGbtError, readKeystore, unlockKeystore } from "@gbt/protocol";
import Database from "better-sqlite3";
import { createClient, getAddress, http } from "viem";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../../testing/run-cli.js";
import {
  type GbtProcess,
  type ServeProcess,
  startGbtProcess,
  startServeProcess,
} from "../../testing/serve-process.js";

const MODEL = "gbt-test-tiny";
const WEI_PER_MICRO = 10n ** 12n;

describe("stake → serve → settle → claim on a real chain (real processes on loopback)", () => {
  let home: string;
  let chain: GbtProcess;
  let gateway: GbtProcess;
  let node: ServeProcess;
  let gatewayUrl: string;
  let adminToken: string;
  let nodeAddress: `0x${string}`;
  let rpcUrl: string;
  let deployment: GbtDeployment;
  const env = () => ({ GBT_HOME: home });
  const balance = () =>
    readGbtBalance(createClient({ chain: foundry, transport: http(rpcUrl), cacheTime: 0 }), {
      token: deployment.token,
      account: nodeAddress,
    });

  beforeAll(async () => {
    home = await tempHome("gbt-payout-");
    expect((await runCli(["setup", "--yes", "--owner", TEST_OWNER], env())).exitCode).toBe(0);
    // No ramp-up: a brand-new node would otherwise start at a fraction of its capacity.
    await mkdir(join(home, "config"), { recursive: true });
    await writeFile(
      join(home, "config", "gateway.json"),
      JSON.stringify({ allowPrivateNodes: true, routing: { rampUpDays: 0 } }),
    );
    chain = await startGbtProcess(["chain", "dev", "--port", "0", "--json"], env());
    rpcUrl = String(chain.first.rpcUrl);
    nodeAddress = getAddress(String(chain.first.node));
    deployment = JSON.parse(readFileSync(join(home, "config", "chain.json"), "utf8")).deployment;
    gateway = await startGbtProcess(
      ["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"],
      env(),
    );
    gatewayUrl = String(gateway.first.url);
    adminToken = readFileSync(join(home, "data", "gateway", "admin-token"), "utf8").trim();
    node = await startServeProcess(["--gateway", gatewayUrl, "--threads", "1"], env());
    const until = Date.now() + 30_000;
    for (;;) {
      const nodes = (await (
        await fetch(`${gatewayUrl}/v1/gateway/nodes`, { headers: { authorization: `Bearer ${adminToken}` } })
      ).json()) as { data?: { status: string }[] };
      if (nodes.data?.some((n) => n.status === "active")) break;
      if (Date.now() > until) throw new Error("the node did not register");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }, 180_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await gateway?.stop("SIGKILL");
    await chain?.stop("SIGINT");
    await rm(home, { recursive: true, force: true });
  });

  it("stakes, earns through the gateway, settles an epoch and claims exactly the earned GBT once", async () => {
    const staked = await runCli(["stake", "deposit", "100", "--yes", "--json"], env());
    expect(staked.exitCode, staked.stdout + staked.stderr).toBe(0);
    expect(onlyJson<{ staked: string }>(staked.stdout).staked).toBe(String(100n * 10n ** 18n));
    // Without a TTY and without --yes nothing is sent.
    const unconfirmed = await runCli(["stake", "deposit", "1", "--json"], env());
    expect(unconfirmed.exitCode).toBe(2);
    expect(onlyJson<{ error: { code: string } }>(unconfirmed.stdout).error.code).toBe("MISSING_INPUT");

    // Before any epoch there is nothing to claim.
    const early = await runCli(["payout", "claim", "--gateway", gatewayUrl, "--yes", "--json"], env());
    expect(onlyJson<{ error: { code: string } }>(early.stdout).error.code).toBe("NOTHING_TO_CLAIM");

    const created = onlyJson<{ key: { key: string } }>(
      (await runCli(["gateway", "keys", "create", "payout-e2e", "--json"], env())).stdout,
    );
    for (const maxTokens of [16, 24]) {
      const response = await fetch(`${gatewayUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${created.key.key}` },
        body: JSON.stringify({
          model: MODEL,
          max_tokens: maxTokens,
          messages: [{ role: "user", content: "Earn." }],
        }),
      });
      expect(response.status).toBe(200);
      await response.json();
    }

    const settled = await fetch(`${gatewayUrl}/v1/settlement/epochs`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const epoch = (await settled.json()) as { posted: boolean; epoch: string; nodes: number };
    expect(epoch).toMatchObject({ posted: true, epoch: "1", nodes: 1 });

    const db = new Database(join(home, "data", "gateway", "gateway.db"), { readonly: true });
    const earnedMicro = BigInt(
      (
        db
          .prepare("SELECT SUM(amount) AS earned FROM ledger_entries WHERE account = ? AND amount > 0")
          .get(`provider:${nodeAddress.toLowerCase()}`) as { earned: number }
      ).earned,
    );
    db.close();
    expect(earnedMicro).toBeGreaterThan(0n);

    const status = onlyJson<{ earned: string; claimable: string; paid: string }>(
      (await runCli(["payout", "status", "--gateway", gatewayUrl, "--json"], env())).stdout,
    );
    expect(status).toMatchObject({ earned: String(earnedMicro * WEI_PER_MICRO), paid: "0" });
    expect(status.claimable).toBe(status.earned);

    const before = await balance();
    const claimed = await runCli(["payout", "claim", "--gateway", gatewayUrl, "--yes", "--json"], env());
    expect(claimed.exitCode, claimed.stdout + claimed.stderr).toBe(0);
    expect(onlyJson<{ amount: string }>(claimed.stdout).amount).toBe(String(earnedMicro * WEI_PER_MICRO));
    expect((await balance()) - before).toBe(earnedMicro * WEI_PER_MICRO);

    const again = await runCli(["payout", "claim", "--gateway", gatewayUrl, "--yes", "--json"], env());
    expect(again.exitCode).toBe(7);
    expect(onlyJson<{ error: { code: string } }>(again.stdout).error.code).toBe("NOTHING_TO_CLAIM");
    expect(await balance()).toBe(before + earnedMicro * WEI_PER_MICRO);
  }, 120_000);

  it("refuses a forged proof on chain", async () => {
    const proof = (await (await fetch(`${gatewayUrl}/v1/settlement/proofs/${nodeAddress}`)).json()) as {
      cumulative: string;
      proof: `0x${string}`[];
    };
    const account = await unlockKeystore(await readKeystore(join(home, "config", "keys", "node.json")));
    const client = createClient({
      account,
      chain: { ...foundry, rpcUrls: { default: { http: [rpcUrl] } } },
      transport: http(rpcUrl),
      cacheTime: 0,
    });
    const before = await balance();
    const forged = await claim(client, {
      deployment,
      node: nodeAddress,
      cumulative: BigInt(proof.cumulative) * 2n,
      proof: proof.proof,
    }).catch((error: unknown) => error);
    expect(isGbtError(forged) && forged.code).toBe("INVALID_PROOF");
    expect(await balance()).toBe(before);
  });

  it("does not let an unbonding node withdraw before the delay", async () => {
    const unbonded = await runCli(["stake", "unbond", "40", "--yes", "--json"], env());
    expect(unbonded.exitCode, unbonded.stdout + unbonded.stderr).toBe(0);
    const withdrawn = await runCli(["stake", "withdraw", "--yes", "--json"], env());
    expect(withdrawn.exitCode).toBe(9);
    expect(onlyJson<{ error: { code: string } }>(withdrawn.stdout).error.code).toBe("UNBONDING_NOT_FINISHED");
    const status = onlyJson<{ staked: string; unbonding: string; withdrawable: boolean }>(
      (await runCli(["stake", "status", "--json"], env())).stdout,
    );
    expect(status).toMatchObject({
      staked: String(60n * 10n ** 18n),
      unbonding: String(40n * 10n ** 18n),
      withdrawable: false,
    });
  });

  it("names the wrong chain when the RPC serves another one", async () => {
    const other = await startAnvil({ chainId: 4_242 });
    try {
      const result = await runCli(["stake", "status", "--rpc-url", other.rpcUrl, "--json"], env());
      expect(result.exitCode).toBe(4);
      expect(onlyJson<{ error: { code: string } }>(result.stdout).error.code).toBe("WRONG_CHAIN");
    } finally {
      await other.stop();
    }
  });
});
