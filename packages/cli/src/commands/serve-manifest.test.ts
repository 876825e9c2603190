import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../testing/run-cli.js";
import { startServeProcess } from "../testing/serve-process.js";

const key = generatePrivateKey();
const publisher = privateKeyToAccount(key).address;

const manifestYaml = `name: pipeline-chat
version: 1.0.0
artifacts:
  - path: dist/pipeline.gguf
    role: weights
license:
  spdx: Apache-2.0
  claims: { commercialUse: true }
runtime: { format: gguf, quantization: F32, backends: [embedded] }
vramBand: { minMiB: 0, maxMiB: 64 }
contextWindow: 512
intendedUse:
  summary: Pipeline tests.
  tasks: [chat]
`;

describe("gbt serve --manifest: a node serves only what its signed manifest describes", () => {
  let home: string;
  let signed: string;
  let weights: string;
  const env = () => ({ GBT_HOME: home, GBT_PUBLISHER_KEY: key });

  beforeAll(async () => {
    home = await tempHome("gbt-serve-manifest-");
    expect((await runCli(["setup", "--yes"], env())).exitCode).toBe(0);
    weights = join(home, "dist", "pipeline.gguf");
    const init = await runCli(["model", "test-init", "--out", weights, "--seed", "7"], env());
    expect(init.exitCode, init.stderr).toBe(0);
    await writeFile(join(home, "model.yaml"), manifestYaml);
    signed = join(home, "signed.json");
    const dry = await runCli(
      ["model", "publish", join(home, "model.yaml"), "--dry-run", "--out", signed],
      env(),
    );
    expect(dry.exitCode, dry.stderr).toBe(0);
  }, 120_000);

  it("serves the manifest's model under its name when signature and sha256 hold", async () => {
    const node = await startServeProcess(
      ["--manifest", signed, "--publisher", publisher, "--threads", "1"],
      env(),
    );
    try {
      expect(node.url).toMatch(/^http/);
      const models = (await (await fetch(`${node.url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(["pipeline-chat"]);
      const chat = await fetch(`${node.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "pipeline-chat",
          max_tokens: 4,
          messages: [{ role: "user", content: "Hi" }],
        }),
      });
      expect(chat.status).toBe(200);
    } finally {
      await node.stop("SIGTERM");
    }
  });

  it("refuses a manifest from another publisher (exit 4) and weights with one changed byte (exit 6)", async () => {
    const other = privateKeyToAccount(generatePrivateKey()).address;
    const foreign = await runCli(["serve", "--manifest", signed, "--publisher", other, "--json"], env());
    expect(foreign.exitCode).toBe(4);
    expect(onlyJson<{ error: { code: string } }>(foreign.stdout).error.code).toBe("UNKNOWN_SIGNER");

    const bytes = await readFile(weights);
    const at = bytes.length - 100;
    bytes[at] = (bytes[at] as number) ^ 1;
    await writeFile(weights, bytes);
    const tampered = await runCli(["serve", "--manifest", signed, "--json"], env());
    expect(tampered.exitCode).toBe(6);
    expect(onlyJson<{ error: { code: string } }>(tampered.stdout).error.code).toBe("ARTIFACT_MISMATCH");
  });
});
