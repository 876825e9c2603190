import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { GbtError } from "./errors.js";
import {
  type ModelManifest,
  modelManifestHash,
  parseManifestText,
  parseModelManifest,
  parseModelManifestDraft,
  parseModelRef,
  signModelManifest,
  verifyModelManifest,
} from "./model-manifest.js";

const publisher = privateKeyToAccount(generatePrivateKey());
const other = privateKeyToAccount(generatePrivateKey());
const CHAIN = 31_337;

function complete(overrides: Record<string, unknown> = {}): ModelManifest {
  return parseModelManifest({
    name: "tiny-chat",
    version: "1.0.0",
    artifacts: [{ path: "models/tiny.gguf", sha256: "AB".repeat(32), size: 1234 }],
    license: { spdx: "Apache-2.0", claims: { commercialUse: true } },
    runtime: { format: "gguf", quantization: "F16", backends: ["embedded"] },
    vramBand: { minMiB: 0, maxMiB: 512 },
    contextWindow: 512,
    intendedUse: { summary: "Pipeline tests." },
    publisher: publisher.address,
    createdAt: "2026-01-31T12:00:00Z",
    ...overrides,
  });
}

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(GbtError);
    expect((error as GbtError).code).toBe("MANIFEST_INVALID");
    return (error as GbtError).details?.issues as { path: string; message: string }[];
  }
  throw new Error("expected MANIFEST_INVALID");
}

describe("model manifests", () => {
  it("reads the same document from YAML and JSON, normalised (hash lower-case, defaults filled)", () => {
    const yaml = `
name: tiny-chat
version: 1.0.0
artifacts:
  - path: models/tiny.gguf
license: { spdx: MIT OR Apache-2.0 }
runtime: { format: gguf, quantization: Q4_K_M, backends: [embedded, ollama] }
vramBand: { minMiB: 256, maxMiB: 1024 }
contextWindow: 2048
intendedUse:
  summary: Chat for tests.
createdAt: 2026-01-31T12:00:00Z
`;
    const fromYaml = parseModelManifestDraft(parseManifestText(yaml));
    const fromJson = parseModelManifestDraft(parseManifestText(JSON.stringify(fromYaml)));
    expect(fromJson).toEqual(fromYaml);
    // YAML 1.2 core schema: a timestamp stays a string, version 1.0.0 stays a string.
    expect(fromYaml.createdAt).toBe("2026-01-31T12:00:00Z");
    expect(fromYaml.artifacts[0]).toEqual({ path: "models/tiny.gguf", role: "weights" });
    expect(complete().artifacts[0]?.sha256).toBe("ab".repeat(32));
  });

  it("names every problem by its JSON path", () => {
    const issues = issuesOf(() =>
      parseModelManifestDraft({
        name: "bad name",
        version: "1.0",
        artifacts: [
          { path: "../../etc/passwd" },
          { path: "/abs/model.gguf", sha256: "xyz" },
          { uri: "https://example.com/m.gguf" },
          { path: "a.gguf", uri: "https://example.com/a" },
        ],
        license: { spdx: "not a license!" },
        runtime: { format: "gguf", quantization: "Q4", backends: [] },
        vramBand: { minMiB: 2048, maxMiB: 1024 },
        contextWindow: 0,
        intendedUse: { summary: "x" },
        extra: true,
      }),
    );
    const paths = issues.map((issue) => issue.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "$.name",
        "$.artifacts[0].path",
        "$.artifacts[1].path",
        "$.artifacts[1].sha256",
        "$.artifacts[2].sha256",
        "$.artifacts[3]",
        "$.license.spdx",
        "$.runtime.backends",
        "$.vramBand.minMiB",
        "$.contextWindow",
        "$",
      ]),
    );
    expect(issues.find((issue) => issue.path === "$.artifacts[0].path")?.message).toMatch(/\.\./);
  });

  it("a complete manifest needs every sha256, size, publisher and createdAt", () => {
    const issues = issuesOf(() =>
      parseModelManifest({
        ...complete(),
        artifacts: [{ path: "a.gguf" }],
        publisher: undefined,
        createdAt: undefined,
      }),
    );
    expect(issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(["$.artifacts[0].sha256", "$.artifacts[0].size", "$.publisher", "$.createdAt"]),
    );
  });

  it("refuses malformed text with a clear code: bad JSON, bad YAML, duplicate keys, oversize", () => {
    expect(() => parseManifestText("{nope")).toThrow(/not valid JSON/);
    expect(() => parseManifestText("name: a\nname: b\n")).toThrow(/not valid YAML/);
    expect(() => parseManifestText("a: [1, 2\n")).toThrow(/not valid YAML/);
    expect(() => parseManifestText(`name: "${"x".repeat(300_000)}"`)).toThrow(/over/);
    const bomb =
      "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
    expect(() => parseManifestText(bomb)).toThrow(GbtError);
  });

  it("signs and verifies; the hash is canonical (key order does not matter)", async () => {
    const manifest = complete();
    const signed = await signModelManifest(publisher, { manifest, chainId: CHAIN });
    expect(signed.message.manifestHash).toBe(modelManifestHash(manifest));
    const reordered = JSON.parse(JSON.stringify({ ...signed, payload: { ...manifest } }));
    const verified = await verifyModelManifest(reordered, { chainId: CHAIN });
    expect(verified.payload).toEqual(manifest);
    expect(verified.message.createdAt).toBe(Date.parse("2026-01-31T12:00:00Z") / 1000);
    expect(parseModelRef("tiny-chat@1.0.0")).toEqual({ name: "tiny-chat", version: "1.0.0" });
    expect(() => parseModelRef("tiny-chat")).toThrow(/NAME@VERSION/);
  });

  it("a changed field, a wrong key, or another chain fails verification", async () => {
    const signed = await signModelManifest(publisher, { manifest: complete(), chainId: CHAIN });
    const tampered = structuredClone(signed);
    (tampered.payload.artifacts[0] as { size: number }).size += 1;
    await expect(verifyModelManifest(tampered, { chainId: CHAIN })).rejects.toMatchObject({
      code: "PAYLOAD_HASH_MISMATCH",
    });
    // Signing a manifest that names another publisher is refused before any signature is made.
    await expect(signModelManifest(other, { manifest: complete(), chainId: CHAIN })).rejects.toMatchObject({
      code: "SIGNER_MISMATCH",
    });
    // A signature by another key over the same message does not pass as the publisher's.
    const forged = {
      ...signed,
      signature: (
        await signModelManifest(other, {
          manifest: complete({ publisher: other.address }),
          chainId: CHAIN,
        })
      ).signature,
    };
    await expect(verifyModelManifest(forged, { chainId: CHAIN })).rejects.toMatchObject({
      code: "SIGNATURE_INVALID",
    });
    await expect(verifyModelManifest(signed, { chainId: 1 })).rejects.toMatchObject({ code: "WRONG_CHAIN" });
    await expect(
      verifyModelManifest(signed, { chainId: CHAIN, allowedSigners: [other.address] }),
    ).rejects.toMatchObject({ code: "UNKNOWN_SIGNER" });
    // A payload that is valid and correctly hashed but not in normal form (upper-case hex) is refused.
    const loose = structuredClone(signed) as unknown as { payload: { artifacts: { sha256: string }[] } };
    (loose.payload.artifacts[0] as { sha256: string }).sha256 = "AB".repeat(32);
    await expect(verifyModelManifest(loose, { chainId: CHAIN })).rejects.toMatchObject({
      code: "PAYLOAD_HASH_MISMATCH",
    });
  });
});
