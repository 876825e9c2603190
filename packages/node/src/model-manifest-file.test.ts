import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publishModel } from "@gbt/publish";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEmbeddedBackend } from "./backends/embedded.js";
import type { Backend } from "./backends/types.js";
import { embeddedModelFromManifest, embeddedModelFromManifestFile } from "./model-manifest-file.js";
import { generateTestModel } from "./test-model/test-model.js";

let dir: string;
let backend: Backend | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gbt-manifest-model-"));
});
afterEach(async () => {
  await backend?.close();
  backend = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe("the embedded backend serving a model from its signed manifest", () => {
  it("serves the GGUF the manifest signed, and refuses it after one changed byte", async () => {
    const generated = await generateTestModel(join(dir, "tiny.gguf"));
    const manifestPath = join(dir, "manifest.yaml");
    await writeFile(
      manifestPath,
      [
        "name: tiny-chat",
        "version: 1.0.0",
        "artifacts:",
        "  - path: tiny.gguf",
        "license: { spdx: Apache-2.0 }",
        "runtime: { format: gguf, quantization: F32, backends: [embedded] }",
        "vramBand: { minMiB: 0, maxMiB: 64 }",
        "contextWindow: 512",
        "intendedUse: { summary: Pipeline tests. }",
        "",
      ].join("\n"),
    );
    const { signed } = await publishModel({
      manifestPath,
      account: privateKeyToAccount(generatePrivateKey()),
      dryRun: true,
    });
    const file = await embeddedModelFromManifest(signed, dir);
    const signedPath = join(dir, "manifest.signed.json");
    await writeFile(signedPath, JSON.stringify(signed));
    expect(await embeddedModelFromManifestFile(signedPath)).toEqual(file);
    await expect(
      embeddedModelFromManifestFile(signedPath, {
        publishers: [privateKeyToAccount(generatePrivateKey()).address],
      }),
    ).rejects.toMatchObject({ code: "UNKNOWN_SIGNER" });
    expect(file).toMatchObject({ id: "tiny-chat", sha256: generated.sha256.replace(/^sha256:/, "") });
    backend = createEmbeddedBackend({ models: [file], threads: 1 });
    const result = await backend.chat({
      model: "tiny-chat",
      messages: [{ role: "user", content: "Hi" }],
      maxTokens: 4,
      seed: 1,
    });
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    await backend.close();

    // Flip one byte near the end (tensor data: the file still loads in llama.cpp, but is not the signed one).
    const handle = await open(generated.path, "r+");
    try {
      const at = generated.sizeBytes - 10;
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = (byte[0] as number) ^ 0xff;
      await handle.write(byte, 0, 1, at);
    } finally {
      await handle.close();
    }
    backend = createEmbeddedBackend({ models: [file], threads: 1 });
    await expect(backend.loadModel?.("tiny-chat")).rejects.toMatchObject({ code: "ARTIFACT_MISMATCH" });
    // Without a manifest the same file still serves (the check is opt-in per model).
    const unchecked = createEmbeddedBackend({ models: [{ id: "plain", path: generated.path }], threads: 1 });
    try {
      await expect(unchecked.loadModel?.("plain")).resolves.toBeUndefined();
    } finally {
      await unchecked.close();
    }
  });
});
