/**
 * `gbt up` includes the chain: its first request is settled in epoch 1 at once, and a node of the
 * local network claims its GBT with `gbt payout claim` from its own home (<dir>/node-1).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

describe("gbt up with its dev chain (real processes on loopback)", () => {
  let home: string;
  let up: GbtProcess;

  beforeAll(async () => {
    home = await tempHome("gbt-up-chain-");
    up = await startGbtProcess(["up", "--nodes", "1", "--port", "0", "--json", "--dir", join(home, "up")], {
      GBT_HOME: home,
    });
  }, 120_000);

  afterAll(async () => {
    // SIGKILL on purpose: the dev chain must not outlive gbt up even then.
    await up?.stop("SIGKILL");
    await rm(home, { recursive: true, force: true });
  });

  it("settles the first request on chain and lets the node claim it", async () => {
    const chain = up.first.chain as { firstEpoch: { posted: boolean; epoch: string; total: string } };
    expect(chain.firstEpoch).toMatchObject({ posted: true, epoch: "1" });
    const nodeHome = { GBT_HOME: join(home, "up", "node-1") };
    const stake = onlyJson<{ staked: string }>(
      (await runCli(["stake", "status", "--json"], nodeHome)).stdout,
    );
    expect(stake.staked).toBe(String(1000n * 10n ** 18n));
    const claimed = await runCli(["payout", "claim", "--yes", "--json"], nodeHome);
    expect(claimed.exitCode, claimed.stdout + claimed.stderr).toBe(0);
    // One node earned everything in the first epoch.
    expect(onlyJson<{ amount: string }>(claimed.stdout).amount).toBe(chain.firstEpoch.total);
  });
});
