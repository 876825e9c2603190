import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGatewayClient, GbtError, type ModelManifest, signModelManifest } from "@gbt/protocol";
import { resolvePaths } from "@gbt/store";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Backend } from "../backends/types.js";
import { agentPullPolicy } from "../models/pull-policy.js";
import type { RunningNode } from "../serve.js";
import { generateTestModel } from "../test-model/test-model.js";
import { type ArtifactServer, startArtifactServer } from "../testing/artifact-server.js";
import { type ModelJobHandlerOptions, modelJobHandlers } from "./model-handlers.js";

const FILE = "/files/tiny.gguf";
const CHAIN_ID = 31_337;
const publisher = privateKeyToAccount(generatePrivateKey());
const node = privateKeyToAccount(generatePrivateKey());

let bytes: Buffer;
let sha256: string;
let server: ArtifactServer;
let home: string;
let served: Map<string, string>;

/** An embedded-kind backend that records which files it serves (the handlers' side of the contract). */
function recordingBackend(): Backend {
  return {
    kind: "embedded",
    addModelFile: (id: string, path: string) => void served.set(id, path),
    forgetModel: async (id: string) => void served.delete(id),
    loadModel: async (id: string) => {
      const path = served.get(id);
      if (!path) throw new Error(`no model ${id}`);
      // A GGUF starts with its magic: what a real load would refuse first.
      expect((await readFile(path)).subarray(0, 4).toString()).toBe("GGUF");
    },
    listModels: async () => [...served.keys()].map((id) => ({ id })),
  } as unknown as Backend;
}

function manifest(overrides: Partial<ModelManifest> = {}): ModelManifest {
  return {
    schemaVersion: 1,
    name: "tiny-chat",
    version: "1.0.0",
    artifacts: [{ uri: `${server.url}${FILE}`, sha256, size: bytes.length, role: "weights" }],
    license: { spdx: "Apache-2.0", claims: {} },
    runtime: { format: "gguf", quantization: "F32", backends: ["embedded"] },
    vramBand: { minMiB: 0, maxMiB: 512 },
    contextWindow: 512,
    intendedUse: { summary: "Agent pull tests.", tasks: [], outOfScope: [] },
    publisher: publisher.address,
    createdAt: "2026-12-01T00:00:00Z",
    ...overrides,
  } as ModelManifest;
}

function handlers(options: ModelJobHandlerOptions = {}) {
  const paths = resolvePaths({ GBT_HOME: home });
  const backend = recordingBackend();
  return modelJobHandlers(paths, () => ({ backend }) as unknown as RunningNode, {
    registry: createGatewayClient({ url: server.url }),
    ...options,
  });
}

async function errorOf(promise: Promise<unknown>): Promise<GbtError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GbtError);
  return error as GbtError;
}

beforeAll(async () => {
  const scratch = await mkdtemp(join(tmpdir(), "gbt-agent-pull-src-"));
  await generateTestModel(join(scratch, "tiny.gguf"), { shape: "tiny" });
  bytes = await readFile(join(scratch, "tiny.gguf"));
  sha256 = createHash("sha256").update(bytes).digest("hex");
  await rm(scratch, { recursive: true, force: true });
});

beforeEach(async () => {
  served = new Map();
  home = await mkdtemp(join(tmpdir(), "gbt-agent-pull-"));
  const paths = resolvePaths({ GBT_HOME: home });
  await mkdir(paths.configDir, { recursive: true });
  await writeFile(
    paths.configFile,
    JSON.stringify({
      version: 1,
      node: { address: node.address, mode: "local", chainId: CHAIN_ID, owners: [publisher.address] },
      backend: { kind: "embedded" },
    }),
  );
  server = await startArtifactServer({ files: { [FILE]: bytes } });
  server.setRegistryModel(
    "tiny-chat@1.0.0",
    await signModelManifest(publisher, { manifest: manifest(), chainId: CHAIN_ID }),
  );
});

afterEach(async () => {
  await server.close();
  await rm(home, { recursive: true, force: true });
});

describe("the agent's model.pull handlers", () => {
  it("a registry reference is verified, installed as its name and served", async () => {
    const h = handlers();
    expect(await h.checkPullSource("tiny-chat@1.0.0")).toEqual({ id: "tiny-chat" });
    const pulled = await h.pullModel("tiny-chat@1.0.0");
    expect(pulled).toEqual({ createdFile: true, id: "tiny-chat" });
    expect(await h.listModels()).toEqual(["tiny-chat"]);
    const models = join(home, "data", "models");
    expect((await readdir(models)).sort()).toEqual(["tiny-chat.gguf", "tiny-chat.manifest.json"]);
    // model.remove's last step deletes the file and its manifest.
    await h.unloadModel("tiny-chat");
    expect(await h.deleteModelFile("tiny-chat")).toBe(true);
    expect(await readdir(models)).toEqual([]);
  });

  it("a bare URL is refused by the default policy and allowed when the owner's policy allows URLs", async () => {
    const url = `${server.url}${FILE}`;
    const refused = await errorOf(handlers().checkPullSource(url, { sha256 }));
    expect(refused.code).toBe("POLICY_DENIED");
    expect(refused.hint).toContain("allowUrls");
    const allowed = handlers({
      pullPolicy: { ...agentPullPolicy({ allowUrls: true }), allowLoopbackHttp: true },
    });
    expect(await allowed.pullModel(url, { sha256, as: "from-url" })).toEqual({
      createdFile: true,
      id: "from-url",
    });
    expect(server.requestsOf(FILE)).toHaveLength(1);
  });

  it("wrong bytes from the registry's artifact host: ARTIFACT_MISMATCH, nothing served, no file", async () => {
    server.setFaults(FILE, { wrongBytes: true });
    const error = await errorOf(handlers().pullModel("tiny-chat@1.0.0"));
    expect(error.code).toBe("ARTIFACT_MISMATCH");
    expect(served.size).toBe(0);
    expect(await readdir(join(home, "data", "models"))).toEqual([]);
  });

  it("a model too large for the node's VRAM is refused before the download", async () => {
    server.setRegistryModel(
      "tiny-chat@1.0.0",
      await signModelManifest(publisher, {
        manifest: manifest({ vramBand: { minMiB: 24_576, maxMiB: 40_960 } }),
        chainId: CHAIN_ID,
      }),
    );
    const error = await errorOf(handlers({ vramMiB: async () => 8192 }).pullModel("tiny-chat@1.0.0"));
    expect(error.message).toBe("tiny-chat@1.0.0 needs 24 GiB VRAM, this node has 8.");
    expect(server.requestsOf(FILE)).toHaveLength(0);
  });

  it("model.switch's fit check reads the kept manifest: refused when the node's VRAM no longer fits", async () => {
    server.setRegistryModel(
      "tiny-chat@1.0.0",
      await signModelManifest(publisher, {
        manifest: manifest({ vramBand: { minMiB: 24_576, maxMiB: 40_960 } }),
        chainId: CHAIN_ID,
      }),
    );
    await handlers({ vramMiB: async () => 81_920 }).pullModel("tiny-chat@1.0.0");
    await expect(
      handlers({ vramMiB: async () => 81_920 }).checkModelFits("tiny-chat"),
    ).resolves.toBeUndefined();
    const error = await errorOf(handlers({ vramMiB: async () => 0 }).checkModelFits("tiny-chat"));
    expect(error.code).toBe("PREFLIGHT_FAILED");
    expect(error.message).toContain("needs 24 GiB VRAM, this node has none");
  });

  it("a file already in the models dir is pulled by its id, as before; an unknown name explains the sources", async () => {
    const models = join(home, "data", "models");
    await mkdir(models, { recursive: true });
    await writeFile(join(models, "local.gguf"), bytes);
    const h = handlers();
    expect(await h.pullModel("local")).toEqual({ createdFile: false, id: "local" });
    const unknown = await errorOf(h.checkPullSource("nothing-here"));
    expect(unknown.code).toBe("PREFLIGHT_FAILED");
    expect(unknown.hint).toContain("hf:OWNER/REPO/FILE.gguf");
  });

  it("the generated test model is still pullable by name", async () => {
    expect(await handlers().pullModel("gbt-test-tiny")).toEqual({ createdFile: true, id: "gbt-test-tiny" });
  });
});
