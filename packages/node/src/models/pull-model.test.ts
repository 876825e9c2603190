import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createGatewayClient, GbtError, type ModelManifest, signModelManifest } from "@gbt/protocol";
import { resolvePaths } from "@gbt/store";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createOllamaBackend } from "../backends/ollama.js";
import { generateTestModel } from "../test-model/test-model.js";
import { type ArtifactServer, startArtifactServer } from "../testing/artifact-server.js";
import { startFakeOllama } from "../testing/fake-ollama.js";
import { ensureModels, ensureNodeModels } from "./ensure-models.js";
import { pullModel } from "./pull-model.js";

const FILE = "/files/tiny.gguf";
const CHAIN_ID = 31_337;
const publisher = privateKeyToAccount(generatePrivateKey());

let bytes: Buffer;
let sha256: string;
let server: ArtifactServer;
let other: ArtifactServer;
let dir: string;

async function errorOf(promise: Promise<unknown>): Promise<GbtError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GbtError);
  return error as GbtError;
}

/** The models dir holds exactly `names` (no partial file). */
async function expectDir(names: string[]): Promise<void> {
  expect((await readdir(dir)).sort()).toEqual(names.sort());
}

function manifestFor(overrides: Partial<ModelManifest> = {}, uri = `${server.url}${FILE}`): ModelManifest {
  return {
    schemaVersion: 1,
    name: "tiny-chat",
    version: "1.0.0",
    artifacts: [{ uri, sha256, size: bytes.length, role: "weights" }],
    license: { spdx: "Apache-2.0", claims: {} },
    runtime: { format: "gguf", quantization: "F32", backends: ["embedded"] },
    vramBand: { minMiB: 0, maxMiB: 512 },
    contextWindow: 512,
    intendedUse: { summary: "Pull tests.", tasks: [], outOfScope: [] },
    publisher: publisher.address,
    createdAt: "2026-12-01T00:00:00Z",
    ...overrides,
  } as ModelManifest;
}

beforeAll(async () => {
  const scratch = await mkdtemp(join(tmpdir(), "gbt-pull-src-"));
  await generateTestModel(join(scratch, "tiny.gguf"), { shape: "tiny" });
  bytes = await readFile(join(scratch, "tiny.gguf"));
  sha256 = createHash("sha256").update(bytes).digest("hex");
  await rm(scratch, { recursive: true, force: true });
  other = await startArtifactServer({ files: { [FILE]: bytes } });
});

afterAll(async () => {
  await other.close();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gbt-models-"));
  server = await startArtifactServer({ files: { [FILE]: bytes } });
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const urlOptions = () => ({
  modelsDir: dir,
  backendKind: "embedded",
  sha256,
  policy: { allowLoopbackHttp: true },
});

describe("pullModel from a URL with --sha256 against a real loopback server", () => {
  it("installs <id>.gguf with the verified hash and size", async () => {
    const result = await pullModel(`${server.url}${FILE}`, urlOptions());
    expect(result).toMatchObject({
      id: "tiny",
      sha256,
      bytes: bytes.length,
      alreadyPresent: false,
      kind: "url",
    });
    expect(await readFile(join(dir, "tiny.gguf"))).toEqual(bytes);
    await expectDir(["tiny.gguf"]);
  });

  it("--as names the file; a second pull finds it present and downloads nothing", async () => {
    await pullModel(`${server.url}${FILE}`, { ...urlOptions(), as: "mine" });
    const again = await pullModel(`${server.url}${FILE}`, { ...urlOptions(), as: "mine" });
    expect(again.alreadyPresent).toBe(true);
    expect(server.requestsOf(FILE)).toHaveLength(1);
    await expectDir(["mine.gguf"]);
  });

  it("a bare URL without --sha256 is refused before any request", async () => {
    const error = await errorOf(
      pullModel(`${server.url}${FILE}`, { ...urlOptions(), sha256: undefined as never }),
    );
    expect(error.code).toBe("MISSING_INPUT");
    expect(server.requests).toHaveLength(0);
  });

  it("plain http is refused unless explicitly allowed", async () => {
    const error = await errorOf(pullModel(`${server.url}${FILE}`, { ...urlOptions(), policy: {} }));
    expect(error.code).toBe("POLICY_DENIED");
  });

  it("a connection dropped mid-body is resumed with Range and the file is complete", async () => {
    server.setFaults(FILE, { dropAfterBytes: 300_000, dropTimes: 3 });
    const progress: number[] = [];
    const result = await pullModel(`${server.url}${FILE}`, {
      ...urlOptions(),
      onProgress: (p) => progress.push(p.bytes),
    });
    expect(result.sha256).toBe(sha256);
    const gets = server.requestsOf(FILE);
    expect(gets.length).toBe(4);
    // Bytes still buffered when the socket closed are fetched again: the resume starts at or before the cut.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(300_000);
    expect(gets[3]?.status).toBe(206);
    expect(progress.at(-1)).toBe(bytes.length);
    await expectDir(["tiny.gguf"]);
  });

  it("a server ignoring Range on resume: the download starts over and still verifies", async () => {
    server.setFaults(FILE, { dropAfterBytes: 200_000, dropTimes: 1, ignoreRange: true });
    const result = await pullModel(`${server.url}${FILE}`, urlOptions());
    expect(result.sha256).toBe(sha256);
    expect(server.requestsOf(FILE).map((r) => r.status)).toEqual([200, 200]);
  });

  it("wrong bytes: ARTIFACT_MISMATCH (exit 6), nothing installed, no partial file", async () => {
    server.setFaults(FILE, { wrongBytes: true });
    const error = await errorOf(pullModel(`${server.url}${FILE}`, urlOptions()));
    expect(error.code).toBe("ARTIFACT_MISMATCH");
    expect(error.exitCode).toBe(6);
    expect(error.message).toContain(sha256);
    await expectDir([]);
  });

  it("a Content-Length shorter than the file: the truncated body fails the hash", async () => {
    server.setFaults(FILE, { claimLength: bytes.length - 1000 });
    const error = await errorOf(pullModel(`${server.url}${FILE}`, urlOptions()));
    expect(error.code).toBe("ARTIFACT_MISMATCH");
    await expectDir([]);
  });

  it("a Content-Length longer than the file: the resume learns the true size, the hash decides", async () => {
    server.setFaults(FILE, { claimLength: bytes.length + 5000 });
    const result = await pullModel(`${server.url}${FILE}`, urlOptions());
    expect(result.sha256).toBe(sha256);
    const statuses = server.requestsOf(FILE).map((r) => r.status);
    expect(statuses[0]).toBe(200);
    expect([206, 416]).toContain(statuses.at(-1));
    await expectDir(["tiny.gguf"]);
  });

  it("a redirect to another host is refused unless the policy allows the host", async () => {
    const elsewhere = `http://localhost:${other.port}${FILE}`;
    server.setFaults(FILE, { redirectTo: elsewhere });
    const refused = await errorOf(pullModel(`${server.url}${FILE}`, urlOptions()));
    expect(refused.code).toBe("POLICY_DENIED");
    expect(refused.message).toContain(`localhost:${other.port}`);
    expect(other.requestsOf(FILE)).toHaveLength(0);
    await expectDir([]);
    const allowed = await pullModel(`${server.url}${FILE}`, {
      ...urlOptions(),
      policy: { allowLoopbackHttp: true, allowedHosts: [`localhost:${other.port}`] },
    });
    expect(allowed.sha256).toBe(sha256);
    expect(other.requestsOf(FILE)).toHaveLength(1);
  });

  it("an unreachable server: SOURCE_UNREACHABLE (exit 5) with a hint", async () => {
    const url = `${server.url}${FILE}`;
    await server.close();
    server = await startArtifactServer({ files: {} });
    const error = await errorOf(pullModel(url, urlOptions()));
    expect(error.code).toBe("SOURCE_UNREACHABLE");
    expect(error.exitCode).toBe(5);
    expect(error.hint).toBeTruthy();
    await expectDir([]);
  });

  it("a server that stalls mid-body: each stall counts as a drop and the download resumes", async () => {
    server.setFaults(FILE, { stallAfterBytes: 600_000 });
    const result = await pullModel(`${server.url}${FILE}`, {
      ...urlOptions(),
      download: { idleTimeoutMs: 100 },
    });
    expect(result.sha256).toBe(sha256);
    const gets = server.requestsOf(FILE);
    expect(gets.length).toBeGreaterThanOrEqual(Math.ceil(bytes.length / 600_000));
    expect(gets[1]?.range).toMatch(/^bytes=\d+-$/);
  });

  it("a server that stalls before any byte: the pull gives up after its tries, no partial file", async () => {
    server.setFaults(FILE, { stallAfterBytes: 0 });
    const error = await errorOf(
      pullModel(`${server.url}${FILE}`, {
        ...urlOptions(),
        download: { idleTimeoutMs: 100, maxStalledAttempts: 2 },
      }),
    );
    expect(error.code).toBe("SOURCE_UNREACHABLE");
    expect(error.message).toContain("without progress");
    expect(server.requestsOf(FILE).length).toBe(2);
    await expectDir([]);
  });

  it("a full disk is refused before the download when the size is known", async () => {
    const error = await errorOf(
      pullModel(`${server.url}${FILE}`, { ...urlOptions(), download: { freeBytes: async () => 1000 } }),
    );
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toMatch(/needs .* has .* free/);
    expect(server.requestsOf(FILE)).toHaveLength(1);
    await expectDir([]);
  });

  it("a disk that fills during the download (ENOSPC from the write): IO_ERROR, no partial file", async () => {
    let written = 0;
    const openSink = () =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          written += chunk.length;
          if (written > 200_000)
            callback(Object.assign(new Error("no space left on device"), { code: "ENOSPC" }));
          else callback();
        },
      });
    const error = await errorOf(
      pullModel(`${server.url}${FILE}`, { ...urlOptions(), download: { openSink } }),
    );
    expect(error.code).toBe("IO_ERROR");
    expect(error.message).toContain("filled up");
    await expectDir([]);
  });

  it("an abort mid-download (Ctrl-C): INTERRUPTED, no partial file", async () => {
    server.setFaults(FILE, { stallAfterBytes: 150_000 });
    const controller = new AbortController();
    const pulling = pullModel(`${server.url}${FILE}`, {
      ...urlOptions(),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytes >= 150_000) controller.abort();
      },
    });
    const error = await errorOf(pulling);
    expect(error.code).toBe("INTERRUPTED");
    await expectDir([]);
  });

  it("two concurrent pulls of one model share one download", async () => {
    const [a, b] = await Promise.all([
      pullModel(`${server.url}${FILE}`, urlOptions()),
      pullModel(`${server.url}${FILE}`, urlOptions()),
    ]);
    expect(a).toEqual(b);
    expect(server.requestsOf(FILE)).toHaveLength(1);
  });

  it("a concurrent pull of another source into the same id is refused, not mixed in", async () => {
    server.setFile("/files/other.gguf", bytes);
    const first = pullModel(`${server.url}${FILE}`, urlOptions());
    const second = await errorOf(
      pullModel(`${server.url}/files/other.gguf`, { ...urlOptions(), as: "tiny" }),
    );
    expect(second.code).toBe("CONFLICT");
    expect((await first).sha256).toBe(sha256);
  });

  it("an id that would leave the models dir is refused", async () => {
    const error = await errorOf(pullModel(`${server.url}${FILE}`, { ...urlOptions(), as: "../evil" }));
    expect(error.code).toBe("USAGE");
  });
});

describe("pullModel on the Ollama backend", () => {
  it("an Ollama name goes through Ollama's own pull; an unknown one fails as Ollama answers", async () => {
    const ollama = await startFakeOllama({ registry: ["llama3.2:1b"] });
    const backend = createOllamaBackend({ host: ollama.url });
    try {
      const options = {
        modelsDir: dir,
        backendKind: "ollama",
        ollamaPull: (name: string, signal?: AbortSignal) =>
          backend.pullModel?.(name, undefined, signal) ?? Promise.resolve(),
      };
      const result = await pullModel("llama3.2:1b", options);
      expect(result).toMatchObject({ id: "llama3.2:1b", kind: "ollama", path: null });
      expect((await backend.listModels()).map((m) => m.id)).toContain("llama3.2:1b");
      await expect(pullModel("nope:1b", options)).rejects.toThrow();
      await expectDir([]);
    } finally {
      await backend.close();
      await ollama.close();
    }
  });
});

describe("pullModel from hf: against a configurable hub endpoint", () => {
  it("downloads OWNER/REPO/resolve/main/FILE from GBT_HF_ENDPOINT", async () => {
    server.setFile("/acme/tiny-GGUF/resolve/main/tiny-f32.gguf", bytes);
    const result = await pullModel("hf:acme/tiny-GGUF/tiny-f32.gguf", {
      modelsDir: dir,
      backendKind: "embedded",
      policy: { allowLoopbackHttp: true },
      env: { GBT_HF_ENDPOINT: server.url },
    });
    expect(result).toMatchObject({ id: "tiny-f32", sha256, kind: "hf" });
  });

  it("a policy without hf refuses it", async () => {
    const error = await errorOf(
      pullModel("hf:acme/tiny-GGUF/tiny-f32.gguf", {
        modelsDir: dir,
        backendKind: "embedded",
        policy: { sources: ["registry"] },
      }),
    );
    expect(error.code).toBe("POLICY_DENIED");
  });
});

describe("pullModel of a registry reference", () => {
  async function registryServer(manifest: ModelManifest): Promise<void> {
    server.setRegistryModel(
      "tiny-chat@1.0.0",
      await signModelManifest(publisher, { manifest, chainId: CHAIN_ID }),
    );
  }
  const registryOptions = (extra: Record<string, unknown> = {}) => ({
    modelsDir: dir,
    backendKind: "embedded",
    registry: createGatewayClient({ url: server.url }),
    chainId: CHAIN_ID,
    ...extra,
  });

  it("verifies the signed manifest and installs the weights checked against its sha256 and size", async () => {
    await registryServer(manifestFor());
    const result = await pullModel("tiny-chat@1.0.0", registryOptions());
    expect(result).toMatchObject({ id: "tiny-chat", sha256, bytes: bytes.length, kind: "registry" });
    expect(result.manifest?.publisher.toLowerCase()).toBe(publisher.address.toLowerCase());
  });

  it("a server whose file differs from the manifest's size is refused before writing", async () => {
    await registryServer(manifestFor());
    server.setFile(FILE, Buffer.concat([bytes, Buffer.from("extra")]));
    const error = await errorOf(pullModel("tiny-chat@1.0.0", registryOptions()));
    expect(error.code).toBe("ARTIFACT_MISMATCH");
    await expectDir([]);
  });

  it("a manifest needing more VRAM than the node has is refused with the numbers", async () => {
    await registryServer(
      manifestFor({ vramBand: { minMiB: 24_576, maxMiB: 32_768 } }, `${server.url}${FILE}`),
    );
    const error = await errorOf(pullModel("tiny-chat@1.0.0", registryOptions({ vramMiB: async () => 8192 })));
    expect(error.code).toBe("PREFLIGHT_FAILED");
    expect(error.message).toContain("needs 24 GiB VRAM, this node has 8");
    expect(server.requestsOf(FILE)).toHaveLength(0);
  });

  it("a manifest for other backends is refused on this one", async () => {
    await registryServer(
      manifestFor(
        { runtime: { format: "gguf", quantization: "F32", backends: ["vllm"] } },
        `${server.url}${FILE}`,
      ),
    );
    const error = await errorOf(pullModel("tiny-chat@1.0.0", registryOptions()));
    expect(error.message).toContain("runs on vllm; this node's backend is embedded");
  });

  it("a manifest signed for another chain is refused", async () => {
    await registryServer(manifestFor());
    const error = await errorOf(pullModel("tiny-chat@1.0.0", registryOptions({ chainId: 1 })));
    expect(error.exitCode).toBe(4);
  });

  it("ensureModels pulls what is missing and reports what to serve", async () => {
    await registryServer(manifestFor());
    const first = await ensureModels(["tiny-chat@1.0.0", "gbt-test-tiny"], registryOptions());
    expect(first.map((m) => [m.id, m.pulled])).toEqual([
      ["tiny-chat", true],
      ["gbt-test-tiny", true],
    ]);
    const second = await ensureModels(["tiny-chat@1.0.0"], registryOptions());
    expect(second[0]?.pulled).toBe(false);
    expect(second[0]?.path).toBe(join(dir, "tiny-chat.gguf"));
  });

  it("ensureNodeModels (what serve --models calls) pulls into GBT_HOME's models dir through the gateway's registry", async () => {
    await registryServer(manifestFor());
    const home = join(dir, "home");
    const paths = resolvePaths({ GBT_HOME: home });
    const [model] = await ensureNodeModels(["tiny-chat@1.0.0"], {
      paths,
      gatewayUrl: server.url,
      chainId: CHAIN_ID,
    });
    expect(model).toMatchObject({
      id: "tiny-chat",
      path: join(paths.modelsDir, "tiny-chat.gguf"),
      pulled: true,
    });
    expect((await readdir(paths.modelsDir)).sort()).toEqual(["tiny-chat.gguf", "tiny-chat.manifest.json"]);
  });
});
