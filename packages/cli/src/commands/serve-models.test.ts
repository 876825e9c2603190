/**
 * `gbt serve --models NAME@VERSION` (a real child process): the signed manifest comes from the
 * registry (a loopback server answering the gateway's registry route), the weights are downloaded
 * and checked against it, then served; a second start finds them and downloads nothing.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { generateTestModel } from "@gbt/node";
import { type ArtifactServer, startArtifactServer } from "@gbt/node/testing";
import { type ModelManifest, signModelManifest } from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, tempHome } from "../testing/run-cli.js";
import { startServeProcess } from "../testing/serve-process.js";

const FILE = "/files/tiny-chat.gguf";
const publisher = privateKeyToAccount(generatePrivateKey());

describe("gbt serve --models", { timeout: 120_000 }, () => {
  let server: ArtifactServer;
  let sha256: string;
  let home: string;

  beforeAll(async () => {
    const scratch = await tempHome("gbt-serve-models-src-");
    await generateTestModel(join(scratch, "tiny.gguf"), { shape: "tiny" });
    const bytes = await readFile(join(scratch, "tiny.gguf"));
    sha256 = createHash("sha256").update(bytes).digest("hex");
    server = await startArtifactServer({ files: { [FILE]: bytes } });
    home = await tempHome("gbt-serve-models-");
    const setup = await runCli(["setup", "--yes", "--json"], { GBT_HOME: home });
    expect(setup.exitCode, setup.stderr).toBe(0);
    const chainId = onlyJson<{ chainId: number }>(setup.stdout).chainId;
    const manifest = {
      schemaVersion: 1,
      name: "tiny-chat",
      version: "1.0.0",
      artifacts: [{ uri: `${server.url}${FILE}`, sha256, size: bytes.length, role: "weights" }],
      license: { spdx: "Apache-2.0", claims: {} },
      runtime: { format: "gguf", quantization: "F32", backends: ["embedded"] },
      vramBand: { minMiB: 0, maxMiB: 512 },
      contextWindow: 512,
      intendedUse: { summary: "serve --models tests.", tasks: [], outOfScope: [] },
      publisher: publisher.address,
      createdAt: "2026-12-01T00:00:00Z",
    } as ModelManifest;
    server.setRegistryModel("tiny-chat@1.0.0", await signModelManifest(publisher, { manifest, chainId }));
  });
  afterAll(async () => {
    await server?.close();
  });

  it("pulls the registry model, verifies it, serves it; a restart downloads nothing", async () => {
    const env = { GBT_HOME: home, GBT_GATEWAY_URL: server.url };
    const args = ["--models", "tiny-chat@1.0.0", "--allow-loopback-http", "--threads", "1"];
    const node = await startServeProcess(args, env);
    try {
      expect(node.stderr()).toContain("tiny-chat pulled");
      const models = (await (await fetch(`${node.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toContain("tiny-chat");
      const answer = await fetch(`${node.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "tiny-chat",
          messages: [{ role: "user", content: "Hi" }],
          max_tokens: 4,
        }),
      });
      expect(answer.status).toBe(200);
      const installed = await readFile(join(home, "data", "models", "tiny-chat.gguf"));
      expect(createHash("sha256").update(installed).digest("hex")).toBe(sha256);
    } finally {
      await node.stop("SIGTERM");
    }
    const downloads = server.requestsOf(FILE).length;
    expect(downloads).toBeGreaterThanOrEqual(1);
    const again = await startServeProcess(args, env);
    try {
      expect(again.stderr()).toContain("tiny-chat already here");
      expect(server.requestsOf(FILE)).toHaveLength(downloads);
    } finally {
      await again.stop("SIGTERM");
    }
  });
});
