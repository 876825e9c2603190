import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { modelRegistryAbi } from "@gbt/contracts";
import { createPublicClient, http } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { readContract } from "viem/actions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

// biome-ignore lint/suspicious/noExplicitAny: tests read deep into untyped JSON output.
type Json = Record<string, any>;

describe("the issue's done-when: CI-style publish against `gbt up`, then verify", {
  timeout: 180_000,
}, () => {
  let up: GbtProcess;
  let upDir: string;
  let gatewayUrl: string;
  let work: string;

  beforeAll(async () => {
    const home = await tempHome("gbt-up-registry-");
    upDir = join(home, "up");
    up = await startGbtProcess(["up", "--nodes", "1", "--port", "0", "--json", "--dir", upDir], {
      GBT_HOME: home,
    });
    gatewayUrl = String(up.first.baseUrl).replace(/\/v1$/, "");
    work = await tempHome("gbt-up-publisher-");
  }, 180_000);

  afterAll(async () => {
    await up?.stop("SIGKILL");
  });

  it("a node's signed earnings view names the chain settlement gbt up runs on", async () => {
    const chain = up.first.chain as { contracts: { settlement: string } } | null;
    const config = JSON.parse(await readFile(join(upDir, "node-1", "config", "config.json"), "utf8")) as {
      node: { address: string };
    };
    const answer = (await (await fetch(`${gatewayUrl}/v1/nodes/${config.node.address}/earnings`)).json()) as {
      view: { payload: { settlement: { contract: string } | null } };
    };
    if (chain === null) expect(answer.view.payload.settlement).toBeNull();
    else
      expect(answer.view.payload.settlement?.contract.toLowerCase()).toBe(
        chain.contracts.settlement.toLowerCase(),
      );
  });

  it("publishes the generated test model with the key from the environment and verifies it", async () => {
    const env = { GBT_HOME: work, GBT_PUBLISHER_KEY: generatePrivateKey(), GBT_GATEWAY_URL: gatewayUrl };
    const model = await runCli(
      ["model", "test-init", "--out", join(work, "dist", "gbt-test-tiny.gguf"), "--json"],
      env,
    );
    expect(model.exitCode, model.stderr).toBe(0);
    await writeFile(
      join(work, "model.yaml"),
      [
        "name: gbt-test-tiny",
        "version: 0.1.0",
        "artifacts: [{ path: dist/gbt-test-tiny.gguf }]",
        "license: { spdx: Apache-2.0, claims: { commercialUse: true } }",
        "runtime: { format: gguf, quantization: F32, backends: [embedded] }",
        "vramBand: { minMiB: 0, maxMiB: 64 }",
        "contextWindow: 512",
        'intendedUse: { summary: "Pipeline tests: random weights, noise text." }',
        "",
      ].join("\n"),
    );
    const published = await runCli(["model", "publish", join(work, "model.yaml"), "--json"], env);
    expect(published.exitCode, published.stdout + published.stderr).toBe(0);
    const result = onlyJson<Json>(published.stdout);
    expect(result).toMatchObject({ ref: "gbt-test-tiny@0.1.0", outcome: "created", status: "pending" });
    expect(result.signed.payload.artifacts[0].sha256).toBe(onlyJson<Json>(model.stdout).sha256);
    // What the registry holds is exactly what was signed.
    const registered = (await (
      await fetch(`${gatewayUrl}/v1/registry/models/gbt-test-tiny/0.1.0`)
    ).json()) as Json;
    expect(registered.signed).toEqual(result.signed);

    const verified = await runCli(["model", "verify", "gbt-test-tiny@0.1.0", "--dir", work, "--json"], env);
    expect(verified.exitCode, verified.stdout).toBe(0);
    expect(onlyJson<Json>(verified.stdout)).toMatchObject({
      source: "registry",
      artifacts: [{ status: "verified" }],
    });
  });

  it("--onchain commits the manifest hash to the ModelRegistry of gbt up's chain, staking GBT, once", async () => {
    // node-1 of gbt up holds GBT and ETH on the dev chain, and its home has chain.json: it publishes.
    const nodeHome = join(upDir, "node-1");
    const keyFile = join(nodeHome, "config", "keys", "node.json");
    const env = { GBT_HOME: nodeHome, GBT_PUBLISHER_KEY: "", GBT_GATEWAY_URL: gatewayUrl };
    await writeFile(
      join(work, "onchain.yaml"),
      [
        "name: onchain-tiny",
        "version: 1.0.0",
        "artifacts: [{ path: dist/gbt-test-tiny.gguf }]",
        "license: { spdx: Apache-2.0, claims: { commercialUse: true } }",
        "runtime: { format: gguf, quantization: F32, backends: [embedded] }",
        "vramBand: { minMiB: 0, maxMiB: 64 }",
        "contextWindow: 512",
        'intendedUse: { summary: "Pipeline tests." }',
        "",
      ].join("\n"),
    );
    const args = [
      "model",
      "publish",
      join(work, "onchain.yaml"),
      "--key-file",
      keyFile,
      "--onchain",
      "--json",
    ];
    const first = await runCli(args, env);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    const published = onlyJson<Json>(first.stdout);
    expect(published.onchain).toMatchObject({ status: "published", stake: "100" });
    expect(published.onchain.transaction).toMatch(/^0x[0-9a-f]{64}$/);

    const chain = JSON.parse(await readFile(join(nodeHome, "config", "chain.json"), "utf8")) as Json;
    const client = createPublicClient({ transport: http(chain.rpcUrl), cacheTime: 0 });
    const [publisher, , listed, stake, uri] = await readContract(client, {
      address: chain.deployment.registry,
      abi: modelRegistryAbi,
      functionName: "models",
      args: [published.manifestHash],
    });
    expect(publisher).toBe(published.publisher);
    expect([listed, stake]).toEqual([true, 100n * 10n ** 18n]);
    expect(uri).toBe(`${gatewayUrl}/v1/registry/models/onchain-tiny/1.0.0`);

    // A rerun is idempotent on chain too: no second transaction, no second stake.
    const again = await runCli(args, env);
    expect(again.exitCode, again.stdout).toBe(0);
    expect(onlyJson<Json>(again.stdout).onchain).toMatchObject({ status: "exists", transaction: null });

    const tooLittle = await runCli([...args.slice(0, -1), "--stake", "1", "--json"], env);
    expect(onlyJson<Json>(tooLittle.stdout).onchain ?? null).toMatchObject({ status: "exists" });
  });
});
