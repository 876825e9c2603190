import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isGbtError } from "@gbt/protocol";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeGgufHeader, float32ToFloat16Bits, gguf, writeGguf } from "./gguf-writer.js";
import {
  countTestModelParameters,
  ensureTestModel,
  generateTestModel,
  TEST_MODEL_ID,
  TEST_MODEL_VOCAB_SIZE,
  testModelShapes,
} from "./test-model.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gbt-test-model-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

describe("writeGguf", () => {
  it("writes the header, the metadata and 32-byte aligned tensors that node-llama-cpp reads back", async () => {
    const path = join(dir, "small-file.gguf");
    const values = new Float32Array([1, 2, 3]);
    const written = await writeGguf(path, {
      metadata: [
        ["general.architecture", gguf.string("llama")],
        ["test.count", gguf.u32(7)],
        ["test.eps", gguf.f32(0.5)],
        ["test.flag", gguf.bool(true)],
        ["test.big", gguf.u64(2n ** 40n)],
        ["test.list", gguf.array("i32", [-1, 0, 1])],
        ["test.names", gguf.array("string", ["a", "bé"])],
      ],
      tensors: [
        { name: "a", dims: [3], type: "F32", data: () => [new Uint8Array(values.buffer)] },
        { name: "b", dims: [2, 2], type: "F16", data: () => [new Uint8Array(8).fill(0x11)] },
      ],
    });
    const bytes = await readFile(path);
    expect(written.sizeBytes).toBe(bytes.length);
    expect(written.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(bytes.readBigUInt64LE(8)).toBe(2n); // tensors
    expect(bytes.readBigUInt64LE(16)).toBe(8n); // KV pairs, general.alignment added

    const info = await readGgufFileInfo(path, { logWarnings: false });
    const metadata = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(metadata.test).toEqual({
      count: 7,
      eps: 0.5,
      flag: true,
      big: 2n ** 40n,
      list: [-1, 0, 1],
      names: ["a", "bé"],
    });
    expect(metadata.general?.alignment).toBe(32);
    const tensors = info.fullTensorInfo ?? [];
    expect(
      tensors.map((tensor) => [tensor.name, tensor.dimensions.map(Number), Number(tensor.offset)]),
    ).toEqual([
      ["a", [3], 0],
      ["b", [2, 2], 32],
    ]);
    const dataStart = bytes.length - 64; // two tensors, each padded to 32 bytes
    expect(dataStart % 32).toBe(0);
    expect(bytes.readFloatLE(dataStart + 8)).toBe(3);
    expect(bytes[dataStart + 32]).toBe(0x11);
  });

  it("refuses a tensor source that yields the wrong number of bytes", async () => {
    const write = writeGguf(join(dir, "short.gguf"), {
      metadata: [],
      tensors: [{ name: "a", dims: [4], type: "F32", data: () => [new Uint8Array(12)] }],
    });
    await expect(write).rejects.toMatchObject({
      code: "INVALID_INPUT",
      details: { expected: 16, received: 12 },
    });
  });

  it("checks value ranges and duplicate keys", () => {
    const header = (metadata: Parameters<typeof encodeGgufHeader>[0]["metadata"]) => () =>
      encodeGgufHeader({ metadata, tensors: [] });
    expect(header([["x", gguf.u32(-1)]])).toThrow(/does not fit u32/);
    expect(header([["x", gguf.i32(1.5)]])).toThrow(/does not fit i32/);
    expect(
      header([
        ["x", gguf.u32(1)],
        ["x", gguf.u32(2)],
      ]),
    ).toThrow(/appears twice/);
  });

  it("converts float32 to float16 with round-to-nearest-even (values checked against numpy)", () => {
    const input = new Float32Array([
      0,
      -0,
      1,
      -2,
      65504,
      65519,
      65520,
      6e-8,
      2.98e-8,
      0.1,
      1 / 3,
      Infinity,
      -Infinity,
      6.097555160522461e-5,
    ]);
    const out = new Uint16Array(input.length);
    float32ToFloat16Bits(input, out);
    expect([...out]).toEqual([
      0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x2e66, 0x3555, 0x7c00, 0xfc00,
      0x03ff,
    ]);
    const nan = new Uint16Array(1);
    float32ToFloat16Bits(new Float32Array([Number.NaN]), nan);
    expect((nan[0] ?? 0) & 0x7c00).toBe(0x7c00);
    expect((nan[0] ?? 0) & 0x03ff).not.toBe(0);
  });
});

describe("generateTestModel", () => {
  it("gives a byte-identical file for the same seed and a different one for another seed", async () => {
    const first = await generateTestModel(join(dir, "one.gguf"), { seed: 7 });
    const again = await generateTestModel(join(dir, "two.gguf"), { seed: 7 });
    const other = await generateTestModel(join(dir, "three.gguf"), { seed: 8 });
    expect(again.sha256).toBe(first.sha256);
    expect(other.sha256).not.toBe(first.sha256);
    expect(await sha256(first.path)).toBe(first.sha256);
    expect(other.sizeBytes).toBe(first.sizeBytes);
  });

  it("writes the tiny shape by default: F32, ~1.7 MB, the recipe's metadata and ChatML template", async () => {
    const model = await generateTestModel(join(dir, "tiny.gguf"));
    expect(model.shape).toEqual(testModelShapes.tiny);
    expect(model.parameters).toBe(countTestModelParameters("tiny"));
    expect(model.sizeBytes).toBe((await stat(model.path)).size);
    expect(model.sizeBytes).toBeGreaterThan(1_600_000);
    expect(model.sizeBytes).toBeLessThan(1_800_000);

    const info = await readGgufFileInfo(model.path, { logWarnings: false });
    const metadata = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(metadata.general?.architecture).toBe("llama");
    expect(metadata.general?.file_type).toBe(0);
    expect(metadata.llama).toMatchObject({
      embedding_length: 128,
      block_count: 2,
      context_length: 512,
      vocab_size: 356,
    });
    const tokenizer = metadata.tokenizer as {
      ggml: { tokens: string[]; token_type: number[] };
      chat_template: string;
    };
    expect(tokenizer.ggml.tokens).toHaveLength(TEST_MODEL_VOCAB_SIZE);
    expect(new Set(tokenizer.ggml.tokens).size).toBe(TEST_MODEL_VOCAB_SIZE);
    expect(tokenizer.ggml.tokens.slice(259, 262)).toEqual(["<|im_start|>", "<|im_end|>", "\u2581"]);
    expect(tokenizer.ggml.tokens[3 + 0x0a]).toBe("<0x0A>");
    expect(tokenizer.chat_template).toContain("<|im_start|>");
    const tensors = info.fullTensorInfo ?? [];
    expect(tensors).toHaveLength(3 + 9 * 2);
    expect(tensors.every((tensor) => Number(tensor.offset) % 32 === 0)).toBe(true);
  });

  it("writes the small shape in F16 with grouped-query attention", async () => {
    const model = await generateTestModel(join(dir, "small.gguf"), { shape: "small" });
    expect(model.sizeBytes).toBeGreaterThan(4_900_000);
    expect(model.sizeBytes).toBeLessThan(5_300_000);
    const info = await readGgufFileInfo(model.path, { logWarnings: false });
    const k = info.fullTensorInfo?.find((tensor) => tensor.name === "blk.0.attn_k.weight");
    expect(k?.dimensions.map(Number)).toEqual([256, 128]);
    expect(k?.ggmlType).toBe(1);
  });

  it("sizes the 1b shape at about a billion parameters without generating it", () => {
    const parameters = countTestModelParameters("1b");
    expect(parameters).toBeGreaterThan(0.9e9);
    expect(parameters).toBeLessThan(1.1e9);
  });

  it("rejects impossible shapes and seeds before writing anything", async () => {
    const path = join(dir, "bad.gguf");
    const bad = { ...testModelShapes.tiny, headCount: 3 };
    await expect(generateTestModel(path, { shape: bad })).rejects.toSatisfy((error) =>
      isGbtError(error, "INVALID_INPUT"),
    );
    await expect(generateTestModel(path, { seed: -1 })).rejects.toSatisfy((error) =>
      isGbtError(error, "INVALID_INPUT"),
    );
    await expect(stat(path)).rejects.toThrow();
  });

  it("leaves no temporary file behind", async () => {
    const sub = await mkdtemp(join(dir, "atomic-"));
    await generateTestModel(join(sub, "m.gguf"));
    expect(await readdir(sub)).toEqual(["m.gguf"]);
  });
});

describe("ensureTestModel", () => {
  it("creates gbt-test-tiny.gguf once and then reuses it", async () => {
    const modelsDir = join(dir, "models", "nested");
    const path = await ensureTestModel(modelsDir);
    expect(path).toBe(join(modelsDir, `${TEST_MODEL_ID}.gguf`));
    const created = await stat(path);
    const again = await ensureTestModel(modelsDir);
    expect(again).toBe(path);
    expect((await stat(again)).mtimeMs).toBe(created.mtimeMs);
    const reference = await generateTestModel(join(dir, "reference.gguf"));
    expect(await sha256(path)).toBe(reference.sha256);
  });
});
