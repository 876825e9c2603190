/**
 * `gbt chain dev` with a settler key of its own and a root delay (a real process and anvil): the
 * keystore's key gets the settler role, the gateway key does not, the contract enforces the delay
 * asked for, and gateway.json names the key file; a relative key path is a usage error.
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { type GbtDeployment, settlementAbi } from "@gbt/contracts";
import { createKeystore, newPrivateKey, writeKeystore } from "@gbt/protocol";
import { createClient, http } from "viem";
import { readContract } from "viem/actions";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

describe("gbt chain dev --settler-key-file --root-delay", () => {
  let home: string;
  let chain: GbtProcess | undefined;

  afterAll(async () => {
    await chain?.stop("SIGINT");
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("makes the settler key, not the gateway key, the settler, with the delay asked for", async () => {
    home = await tempHome("gbt-chain-dev-");
    const env = { GBT_HOME: home };
    const keyFile = join(home, "settler-key.json");
    const keystore = await createKeystore(newPrivateKey());
    await writeKeystore(keyFile, keystore);

    const relative = await runCli(
      ["chain", "dev", "--port", "0", "--settler-key-file", "key.json", "--json"],
      env,
    );
    expect(relative.exitCode).toBe(2);

    chain = await startGbtProcess(
      ["chain", "dev", "--port", "0", "--json", "--settler-key-file", keyFile, "--root-delay", "120"],
      env,
    );
    expect(chain.first).toMatchObject({ settler: keystore.address, rootDelaySeconds: 120 });
    const gatewayKey = JSON.parse(readFileSync(join(home, "data", "gateway", "gateway-key.json"), "utf8"))
      .address as `0x${string}`;
    const gatewayConfig = JSON.parse(readFileSync(String(chain.first.gatewayConfig), "utf8"));
    expect(gatewayConfig.settlement.settlerKeyFile).toBe(keyFile);

    const deployment = JSON.parse(readFileSync(String(chain.first.chainConfig), "utf8"))
      .deployment as GbtDeployment;
    const client = createClient({ transport: http(String(chain.first.rpcUrl)), cacheTime: 0 });
    const base = { address: deployment.settlement, abi: settlementAbi } as const;
    const role = await readContract(client, { ...base, functionName: "SETTLER_ROLE" });
    const hasRole = (account: `0x${string}`) =>
      readContract(client, { ...base, functionName: "hasRole", args: [role, account] });
    expect(await hasRole(keystore.address as `0x${string}`)).toBe(true);
    expect(await hasRole(gatewayKey)).toBe(false);
    expect(await readContract(client, { ...base, functionName: "rootDelay" })).toBe(120n);
  }, 120_000);
});
