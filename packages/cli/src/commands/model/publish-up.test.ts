import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generatePrivateKey } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../../testing/serve-process.js";

// biome-ignore lint/suspicious/noExplicitAny: tests read deep into untyped JSON output.
type Json = Record<string, any>;

describe("the issue's done-when: CI-style publish against `gbt up`, then verify", {
  timeout: 180_000,
}, () => {
  let up: GbtProcess;
  let gatewayUrl: string;
  let work: string;

  beforeAll(async () => {
    const home = await tempHome("gbt-up-registry-");
    up = await startGbtProcess(["up", "--nodes", "1", "--port", "0", "--json", "--dir", join(home, "up")], {
      GBT_HOME: home,
    });
    gatewayUrl = String(up.first.baseUrl).replace(/\/v1$/, "");
    work = await tempHome("gbt-up-publisher-");
  }, 180_000);

  afterAll(async () => {
    await up?.stop("SIGKILL");
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
});
