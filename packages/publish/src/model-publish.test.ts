import { createHash } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGatewayClient, GbtError, sha256File, verifyModelManifest } from "@gbt/protocol";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { completeManifest, rehashArtifacts } from "./manifest-artifacts.js";
import { publishModel, verifyModel } from "./publish-model.js";

const publisher = privateKeyToAccount(generatePrivateKey());
let dir: string;
const servers: Server[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-model-publish-"));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

const draft = (artifacts: unknown[] = [{ path: "weights/model.gguf" }]) => ({
  name: "tiny-chat",
  version: "1.0.0",
  artifacts,
  license: { spdx: "Apache-2.0" },
  runtime: { format: "gguf", quantization: "F32", backends: ["embedded"] },
  vramBand: { minMiB: 0, maxMiB: 64 },
  contextWindow: 512,
  intendedUse: { summary: "tests" },
});

function writeManifest(document: unknown = draft(), bytes = "gguf-bytes-for-tests"): string {
  mkdirSync(join(dir, "weights"), { recursive: true });
  writeFileSync(join(dir, "weights", "model.gguf"), bytes);
  const path = join(dir, "manifest.json");
  writeFileSync(path, JSON.stringify(document));
  return path;
}

async function caught(promise: Promise<unknown>): Promise<GbtError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GbtError);
    return error as GbtError;
  }
  throw new Error("expected a GbtError");
}

describe("streaming artifact hashes", () => {
  it("hashes a 128 MiB file with flat memory (RSS growth far below the file size)", async () => {
    const path = join(dir, "large.bin");
    const chunk = Buffer.alloc(1024 * 1024);
    const expected = createHash("sha256");
    const fd = openSync(path, "w");
    for (let i = 0; i < 128; i++) {
      chunk.fill(i % 251);
      chunk.writeUInt32LE(i, 0);
      writeSync(fd, chunk);
      expected.update(chunk);
    }
    closeSync(fd);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let reports = 0;
    const digest = await sha256File(path, {
      progressEveryBytes: 8 * 1024 * 1024,
      onProgress: () => {
        reports += 1;
        peak = Math.max(peak, process.memoryUsage().rss);
      },
    });
    expect(digest).toEqual({ sha256: expected.digest("hex"), size: 128 * 1024 * 1024 });
    expect(reports).toBeGreaterThanOrEqual(16);
    expect(peak - before).toBeLessThan(24 * 1024 * 1024);
  });

  it("names a missing artifact and refuses a directory", async () => {
    expect((await caught(sha256File(join(dir, "nope.gguf")))).code).toBe("NOT_FOUND");
    expect((await caught(sha256File(dir))).code).toBe("INVALID_INPUT");
  });
});

describe("completing and verifying manifests", () => {
  it("fills in sha256, size, publisher and createdAt; a stated wrong hash is an ARTIFACT_MISMATCH", async () => {
    writeManifest();
    const manifest = await completeManifest({
      document: draft(),
      source: "manifest.json",
      baseDir: dir,
      publisher: publisher.address,
      now: () => Date.parse("2026-03-04T05:06:07.890Z"),
    });
    expect(manifest.artifacts[0]).toMatchObject({
      sha256: createHash("sha256").update("gguf-bytes-for-tests").digest("hex"),
      size: 20,
    });
    expect(manifest.createdAt).toBe("2026-03-04T05:06:07Z");
    expect(manifest.publisher).toBe(publisher.address);
    const wrong = await caught(
      completeManifest({
        document: draft([{ path: "weights/model.gguf", sha256: "0".repeat(64) }]),
        source: "m",
        baseDir: dir,
        publisher: publisher.address,
      }),
    );
    expect(wrong.code).toBe("ARTIFACT_MISMATCH");
    expect(wrong.details?.path).toBe("$.artifacts[0]");
    const otherPublisher = await caught(
      completeManifest({
        document: { ...draft(), publisher: privateKeyToAccount(generatePrivateKey()).address },
        source: "m",
        baseDir: dir,
        publisher: publisher.address,
      }),
    );
    expect(otherPublisher.code).toBe("SIGNER_MISMATCH");
  });

  it("refuses artifact paths that leave the manifest's directory, lexically or through a symlink", async () => {
    writeManifest();
    const traversal = await caught(
      completeManifest({
        document: draft([{ path: "../outside.gguf" }]),
        source: "m",
        baseDir: dir,
        publisher: publisher.address,
      }),
    );
    expect(traversal.code).toBe("MANIFEST_INVALID");
    expect(traversal.details?.issues).toEqual([expect.objectContaining({ path: "$.artifacts[0].path" })]);
    const outside = mkdtempSync(join(tmpdir(), "gbt-outside-"));
    try {
      writeFileSync(join(outside, "secret"), "secret");
      symlinkSync(outside, join(dir, "link"));
      const escaped = await caught(
        completeManifest({
          document: draft([{ path: "link/secret" }]),
          source: "m",
          baseDir: dir,
          publisher: publisher.address,
        }),
      );
      expect(escaped.code).toBe("MANIFEST_INVALID");
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("a dry-run publish signs; verify passes, then fails after one changed byte", async () => {
    const manifestPath = writeManifest();
    const result = await publishModel({ manifestPath, account: publisher, dryRun: true });
    expect(result).toMatchObject({ ref: "tiny-chat@1.0.0", outcome: "dry-run", gatewayUrl: null });
    await verifyModelManifest(JSON.parse(JSON.stringify(result.signed)), { chainId: 31_337 });
    const signedPath = join(dir, "manifest.signed.json");
    writeFileSync(signedPath, JSON.stringify(result.signed));
    const verified = await verifyModel({ target: signedPath });
    expect(verified.artifacts).toEqual([
      expect.objectContaining({ status: "verified", path: "weights/model.gguf" }),
    ]);
    expect(verified.publisher).toBe(publisher.address);
    // One changed byte, same size.
    writeFileSync(join(dir, "weights", "model.gguf"), "gguf-bytes-for-testS");
    expect((await caught(verifyModel({ target: signedPath }))).code).toBe("ARTIFACT_MISMATCH");
    // Pinning another publisher fails even with intact artifacts.
    writeFileSync(join(dir, "weights", "model.gguf"), "gguf-bytes-for-tests");
    const pinned = await caught(
      verifyModel({ target: signedPath, publisher: privateKeyToAccount(generatePrivateKey()).address }),
    );
    expect(pinned.code).toBe("UNKNOWN_SIGNER");
    expect((await caught(verifyModel({ target: "no/such/file.yaml" }))).code).toBe("NOT_FOUND");
    expect((await rehashArtifacts(result.signed.payload, dir)).length).toBe(1);
  });
});

async function startServer(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("the registry client", () => {
  it("retries 5xx and network failures with backoff, never a 4xx", async () => {
    let calls = 0;
    const url = await startServer((_req, res) => {
      calls += 1;
      if (calls <= 2) {
        res.writeHead(503, calls === 2 ? { "retry-after": "1" } : {});
        res.end("{}");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ address: publisher.address, chainId: 31_337, heartbeatIntervalMs: 10_000 }));
    });
    const delays: number[] = [];
    const client = createGatewayClient({ url, sleep: async (ms) => void delays.push(ms) });
    expect((await client.getInfo({ retry: true })).chainId).toBe(31_337);
    expect(calls).toBe(3);
    expect(delays[1]).toBe(1000);

    let refusals = 0;
    const refusing = await startServer((_req, res) => {
      refusals += 1;
      res.writeHead(409, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { message: "taken", type: "invalid_request_error", param: null, code: "conflict" },
        }),
      );
    });
    const conflict = await caught(
      createGatewayClient({ url: refusing, sleep: async () => {} }).getRegistryModel({
        name: "a",
        version: "1",
      }),
    );
    expect([conflict.code, refusals]).toEqual(["CONFLICT", 1]);

    const garbage = await startServer((_req, res) => res.end("<html>"));
    // An answer that is not a gbt gateway's is named as such, not taken for an outage.
    expect(
      (await caught(createGatewayClient({ url: garbage }).getRegistryModel({ name: "a", version: "1" })))
        .code,
    ).toBe("INVALID_OBJECT");

    const closedPort = await startServer(() => {});
    await new Promise((resolve) => servers.pop()?.close(resolve));
    const unreachable = await caught(
      createGatewayClient({ url: closedPort, attempts: 3, sleep: async () => {} }).getInfo({ retry: true }),
    );
    expect(unreachable.code).toBe("GATEWAY_UNREACHABLE");
    expect(unreachable.details?.attempts).toBe(3);
    expect(() => createGatewayClient({ url: "ftp://x" })).toThrow(/not an http/);
  });
});
