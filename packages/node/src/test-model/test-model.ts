/**
 * The pipeline-test model: a llama-architecture GGUF with seeded random weights that gbt writes
 * itself, because no model can be downloaded on many machines it must run on. llama.cpp loads and
 * runs it like any model (real tokenizer, real chat template, real matrix work), so every path from
 * a request to a usage receipt can be exercised and timed, but **its text is noise**: it measures
 * the pipeline and the hardware, never answer quality.
 *
 * Recipe (see notes/platform.md): 356-token vocabulary (unk, bos, eos, the 256 byte tokens,
 * `<|im_start|>`, `<|im_end|>`, `▁`, printable ASCII), ChatML chat template, F32 or F16 weights.
 * Weights are small near-normal values from a seeded xoshiro128** stream per tensor, using
 * integer arithmetic only, so the same seed gives a byte-identical file on every machine.
 *
 * One deliberate bias: channel 0 of every token embedding carries a constant, which survives the
 * final RMS norm as a steady positive value, and the output rows of the control tokens (unk, bos,
 * eos, `<|im_start|>`, `<|im_end|>`) and of the byte tokens other than `<0x0A>` weigh that
 * channel strongly negative. The model therefore practically never ends a generation by itself,
 * and its noise is printable ASCII, spaces and newlines (no invalid UTF-8, no terminal escapes):
 * completions run to `maxTokens` (or a stop string), which keeps benchmarks and length tests
 * steady. Input text of any kind still tokenizes (through the byte tokens). For testing a natural
 * stop, `endOfGeneration: "immediately"` writes a model whose first token is always `<|im_end|>`.
 */
import { createHash, randomUUID } from "node:crypto";
import { access, mkdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { GbtError } from "@gbt/protocol";
import {
  float32ToFloat16Bits,
  type GgmlTensorTypeName,
  type GgufTensor,
  type GgufValue,
  gguf,
  writeGguf,
} from "./gguf-writer.js";

/** Model id (and file name without `.gguf`) of the default test model. */
export const TEST_MODEL_ID = "gbt-test-tiny";
/** Seed of the default test model: every machine generates the same file. */
export const DEFAULT_TEST_MODEL_SEED = 1;

/** The dimensions of a test model. */
export interface TestModelShape {
  /** Written as `general.name`. */
  name: string;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  /** Key/value heads (grouped-query attention when fewer than `headCount`). */
  headCountKv: number;
  feedForwardLength: number;
  /** Trained context length declared in the metadata. */
  contextLength: number;
  /** Weight type of the matrices (norms are always F32). */
  tensorType: GgmlTensorTypeName;
}

/** Built-in shapes: `tiny` for tests (~1.7 MB), `small` with GQA (~5 MB), `1b` (~1B parameters, ~2 GB) for measuring real hardware. */
export const testModelShapes = {
  tiny: {
    name: "gbt-test-tiny",
    embeddingLength: 128,
    blockCount: 2,
    headCount: 4,
    headCountKv: 4,
    feedForwardLength: 256,
    contextLength: 512,
    tensorType: "F32",
  },
  small: {
    name: "gbt-test-small",
    embeddingLength: 256,
    blockCount: 4,
    headCount: 4,
    headCountKv: 2,
    feedForwardLength: 512,
    contextLength: 2048,
    tensorType: "F16",
  },
  // The transformer body of a Llama-3.2-1B-class model (its 128k vocabulary aside): the per-token
  // work of a real 1B model, for throughput on real hardware. Written streaming; takes a while.
  "1b": {
    name: "gbt-test-1b",
    embeddingLength: 2048,
    blockCount: 16,
    headCount: 32,
    headCountKv: 8,
    feedForwardLength: 8192,
    contextLength: 4096,
    tensorType: "F16",
  },
} as const satisfies Record<string, TestModelShape>;
export type TestModelShapeName = keyof typeof testModelShapes;

export interface GenerateTestModelOptions {
  /** A built-in shape name or explicit dimensions (default `tiny`). */
  shape?: TestModelShapeName | TestModelShape;
  /** uint32 seed of the weights (default {@link DEFAULT_TEST_MODEL_SEED}). */
  seed?: number;
  /**
   * `"never"` (default): the model practically never ends a completion by itself. `"immediately"`:
   * its first token is always `<|im_end|>`, an empty answer ended by the model, for testing how
   * a pipeline handles a natural stop.
   */
  endOfGeneration?: "never" | "immediately";
}

export interface GeneratedTestModel {
  /** Absolute path of the written file. */
  path: string;
  /** Hex sha256 of the file. */
  sha256: string;
  sizeBytes: number;
  shape: TestModelShape;
  /** Number of weights (all tensor elements). */
  parameters: number;
}

// Vocabulary layout (the recipe of notes/platform.md).
const UNK = 0;
const BOS = 1;
const EOS = 2;
const FIRST_BYTE_TOKEN = 3;
const IM_START = 259;
const IM_END = 260;
const NEWLINE_BYTE_TOKEN = FIRST_BYTE_TOKEN + 0x0a;
/** Tokens the model is built never to generate: control tokens, and bytes other than newline. */
const SUPPRESSED_OUTPUT_TOKENS = new Set([UNK, BOS, EOS, IM_START, IM_END]);
for (let token = FIRST_BYTE_TOKEN; token < FIRST_BYTE_TOKEN + 256; token++) {
  if (token !== NEWLINE_BYTE_TOKEN) SUPPRESSED_OUTPUT_TOKENS.add(token);
}
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Constant of embedding channel 0, in units of the other channels' standard deviation. */
const BIAS_CHANNEL_VALUE = 4;
/** Weight of channel 0 in the output rows of suppressed tokens: their logits land near -25. */
const SUPPRESSION_WEIGHT = -8;
/** Weight of channel 0 in the `<|im_end|>` row of a model that ends at once: its logit lands near +25. */
const FORCED_END_WEIGHT = 8;
/** Elements generated per chunk (4 MiB as F32): the memory bound of writing any shape. */
const CHUNK_ELEMENTS = 1 << 20;

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

function buildVocabulary(): Vocabulary {
  const tokens = ["<unk>", "<s>", "</s>"];
  const scores = [0, 0, 0];
  const types: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
    scores.push(0);
    types.push(TOKEN_TYPE.byte);
  }
  tokens.push("<|im_start|>", "<|im_end|>");
  scores.push(0, 0);
  types.push(TOKEN_TYPE.control, TOKEN_TYPE.control);
  // "▁" (the SentencePiece space) then "!"…"~"; descending scores as SentencePiece orders pieces.
  const pieces = ["\u2581"];
  for (let code = 0x21; code <= 0x7e; code++) pieces.push(String.fromCharCode(code));
  pieces.forEach((piece, index) => {
    tokens.push(piece);
    scores.push(-(index + 1));
    types.push(TOKEN_TYPE.normal);
  });
  return { tokens, scores, types };
}

const VOCABULARY = buildVocabulary();
/** Tokens in the test model's vocabulary. */
export const TEST_MODEL_VOCAB_SIZE = VOCABULARY.tokens.length;

function resolveShape(shape: GenerateTestModelOptions["shape"]): TestModelShape {
  const resolved: TestModelShape =
    typeof shape === "string" || shape === undefined ? testModelShapes[shape ?? "tiny"] : shape;
  if (resolved === undefined) {
    throw new GbtError("INVALID_INPUT", `Unknown test model shape '${String(shape)}'.`, {
      hint: `Use one of ${Object.keys(testModelShapes).join(", ")}, or explicit dimensions.`,
    });
  }
  const integers = [
    "embeddingLength",
    "blockCount",
    "headCount",
    "headCountKv",
    "feedForwardLength",
    "contextLength",
  ] as const;
  const problems: string[] = [];
  for (const field of integers) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value <= 0) problems.push(`${field} must be a positive integer`);
  }
  if (problems.length === 0) {
    if (resolved.embeddingLength % resolved.headCount !== 0)
      problems.push("embeddingLength must be a multiple of headCount");
    else if ((resolved.embeddingLength / resolved.headCount) % 2 !== 0)
      problems.push("the head dimension must be even (RoPE)");
    if (resolved.headCount % resolved.headCountKv !== 0)
      problems.push("headCount must be a multiple of headCountKv");
  }
  if (resolved.tensorType !== "F32" && resolved.tensorType !== "F16")
    problems.push("tensorType must be F32 or F16");
  if (typeof resolved.name !== "string" || resolved.name.length === 0)
    problems.push("name must be a non-empty string");
  if (problems.length > 0) {
    throw new GbtError("INVALID_INPUT", `Invalid test model shape: ${problems.join("; ")}.`, {
      details: { shape: resolved },
    });
  }
  return { ...resolved };
}

/** How a weight tensor is filled: near-normal values of a standard deviation, plus the bias-channel rules. */
type WeightFill =
  | { kind: "ones" }
  | { kind: "normal"; std: number }
  | { kind: "embedding" }
  | { kind: "output"; std: number };

interface PlannedTensor {
  name: string;
  dims: [number] | [number, number];
  type: GgmlTensorTypeName;
  fill: WeightFill;
}

function planTensors(shape: TestModelShape): PlannedTensor[] {
  const embd = shape.embeddingLength;
  const kvDim = (embd / shape.headCount) * shape.headCountKv;
  const vocab = TEST_MODEL_VOCAB_SIZE;
  const type = shape.tensorType;
  const projection = { kind: "normal", std: 1 / Math.sqrt(embd) } as const;
  // Residual branches are scaled by 1/sqrt(2 × layers) so the residual stream stays O(1) at any depth.
  const residualScale = 1 / Math.sqrt(2 * shape.blockCount);
  const tensors: PlannedTensor[] = [
    { name: "token_embd.weight", dims: [embd, vocab], type, fill: { kind: "embedding" } },
  ];
  for (let block = 0; block < shape.blockCount; block++) {
    const prefix = `blk.${block}`;
    tensors.push(
      { name: `${prefix}.attn_norm.weight`, dims: [embd], type: "F32", fill: { kind: "ones" } },
      { name: `${prefix}.attn_q.weight`, dims: [embd, embd], type, fill: projection },
      { name: `${prefix}.attn_k.weight`, dims: [embd, kvDim], type, fill: projection },
      { name: `${prefix}.attn_v.weight`, dims: [embd, kvDim], type, fill: projection },
      {
        name: `${prefix}.attn_output.weight`,
        dims: [embd, embd],
        type,
        fill: { kind: "normal", std: residualScale / Math.sqrt(embd) },
      },
      { name: `${prefix}.ffn_norm.weight`, dims: [embd], type: "F32", fill: { kind: "ones" } },
      { name: `${prefix}.ffn_gate.weight`, dims: [embd, shape.feedForwardLength], type, fill: projection },
      { name: `${prefix}.ffn_up.weight`, dims: [embd, shape.feedForwardLength], type, fill: projection },
      {
        name: `${prefix}.ffn_down.weight`,
        dims: [shape.feedForwardLength, embd],
        type,
        fill: { kind: "normal", std: residualScale / Math.sqrt(shape.feedForwardLength) },
      },
    );
  }
  tensors.push(
    { name: "output_norm.weight", dims: [embd], type: "F32", fill: { kind: "ones" } },
    { name: "output.weight", dims: [embd, vocab], type, fill: { kind: "output", std: 1 / Math.sqrt(embd) } },
  );
  return tensors;
}

/** Number of weights of a shape (every tensor element). */
export function countTestModelParameters(shape: TestModelShapeName | TestModelShape): number {
  return planTensors(resolveShape(shape)).reduce(
    (sum, tensor) => sum + tensor.dims.reduce((a, b) => a * b, 1),
    0,
  );
}

/**
 * A seeded stream of near-normal numbers (mean 0, variance 1): xoshiro128** seeded from
 * sha256(seed, tensor name), each value the centred sum of four 16-bit uniforms (Irwin-Hall).
 * Integer arithmetic only, so the values are identical on every JavaScript engine.
 */
function nearNormalStream(seed: number, tensorName: string): () => number {
  const state = createHash("sha256").update(`gbt-test-model:${seed}:${tensorName}`).digest();
  let s0 = state.readUInt32LE(0);
  let s1 = state.readUInt32LE(4);
  let s2 = state.readUInt32LE(8);
  let s3 = state.readUInt32LE(12);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  const next32 = () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  // Four uniforms on [0, 65535]: mean 131070, standard deviation sqrt(4 × (65536² − 1) / 12).
  const mean = 131070;
  const inverseStd = 1 / Math.sqrt((4 * (65536 * 65536 - 1)) / 12);
  return () => {
    const a = next32();
    const b = next32();
    return ((a & 0xffff) + (a >>> 16) + (b & 0xffff) + (b >>> 16) - mean) * inverseStd;
  };
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** The chunks of one tensor's data, generated on demand into reused buffers. */
function tensorData(
  tensor: PlannedTensor,
  seed: number,
  endOfGeneration: "never" | "immediately",
): GgufTensor["data"] {
  return function* () {
    const rowLength = tensor.dims[0];
    const total = tensor.dims.reduce((a, b) => a * b, 1);
    const fill = tensor.fill;
    const nextNormal = nearNormalStream(seed, tensor.name);
    // Chunks hold whole rows so the per-row rules (bias channel, control rows) stay simple.
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / rowLength));
    const values = new Float32Array(Math.min(total, rowsPerChunk * rowLength));
    const halves = tensor.type === "F16" ? new Uint16Array(values.length) : undefined;
    for (let start = 0; start < total; start += values.length) {
      const count = Math.min(values.length, total - start);
      const firstRow = start / rowLength;
      if (fill.kind === "ones") values.fill(1, 0, count);
      else if (fill.kind === "normal") {
        for (let index = 0; index < count; index++) values[index] = nextNormal() * fill.std;
      } else {
        for (let offset = 0, row = firstRow; offset < count; offset += rowLength, row++) {
          const isForcedEndRow =
            fill.kind === "output" && endOfGeneration === "immediately" && row === IM_END;
          const isSuppressedRow = fill.kind === "output" && SUPPRESSED_OUTPUT_TOKENS.has(row);
          for (let channel = 0; channel < rowLength; channel++) {
            // Drawn for every element, so the stream position never depends on the row rules.
            const noise = nextNormal();
            let value: number;
            if (fill.kind === "embedding") value = channel === 0 ? BIAS_CHANNEL_VALUE : noise;
            else if (isForcedEndRow) value = channel === 0 ? FORCED_END_WEIGHT : 0;
            else if (isSuppressedRow) value = channel === 0 ? SUPPRESSION_WEIGHT : 0;
            else value = noise * fill.std;
            values[offset + channel] = value;
          }
        }
      }
      if (halves) {
        float32ToFloat16Bits(values.subarray(0, count), halves);
        yield new Uint8Array(halves.buffer, 0, count * 2);
      } else {
        yield new Uint8Array(values.buffer, 0, count * 4);
      }
    }
  };
}

function metadataOf(shape: TestModelShape, seed: number): Array<[string, GgufValue]> {
  return [
    ["general.architecture", gguf.string("llama")],
    ["general.name", gguf.string(shape.name)],
    ["general.description", gguf.string("gbt pipeline-test model: seeded random weights, its text is noise")],
    ["general.alignment", gguf.u32(32)],
    ["general.file_type", gguf.u32(shape.tensorType === "F32" ? 0 : 1)],
    ["gbt.test_model.seed", gguf.u32(seed)],
    ["llama.vocab_size", gguf.u32(TEST_MODEL_VOCAB_SIZE)],
    ["llama.context_length", gguf.u32(shape.contextLength)],
    ["llama.embedding_length", gguf.u32(shape.embeddingLength)],
    ["llama.block_count", gguf.u32(shape.blockCount)],
    ["llama.feed_forward_length", gguf.u32(shape.feedForwardLength)],
    ["llama.attention.head_count", gguf.u32(shape.headCount)],
    ["llama.attention.head_count_kv", gguf.u32(shape.headCountKv)],
    ["llama.rope.dimension_count", gguf.u32(shape.embeddingLength / shape.headCount)],
    ["llama.rope.freq_base", gguf.f32(10000)],
    ["llama.attention.layer_norm_rms_epsilon", gguf.f32(1e-5)],
    ["tokenizer.ggml.model", gguf.string("llama")],
    ["tokenizer.ggml.tokens", gguf.array("string", VOCABULARY.tokens)],
    ["tokenizer.ggml.scores", gguf.array("f32", VOCABULARY.scores)],
    ["tokenizer.ggml.token_type", gguf.array("i32", VOCABULARY.types)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(BOS)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(EOS)],
    ["tokenizer.ggml.unknown_token_id", gguf.u32(UNK)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
    ["tokenizer.ggml.add_eos_token", gguf.bool(false)],
    // No SentencePiece space before each text fragment: ChatML role names stay "user", not " user".
    ["tokenizer.ggml.add_space_prefix", gguf.bool(false)],
    ["tokenizer.chat_template", gguf.string(CHATML_TEMPLATE)],
  ];
}

/**
 * Writes a pipeline-test model (random weights, noise text) to `path`. The same shape and seed
 * give a byte-identical file. The file is written to a temporary name beside `path` and renamed
 * into place, so readers never see a partial model; tensors are streamed, so the `1b` shape
 * needs only a few MB of memory (but about a minute of one core and ~2 GB of disk).
 */
export async function generateTestModel(
  path: string,
  options: GenerateTestModelOptions = {},
): Promise<GeneratedTestModel> {
  const shape = resolveShape(options.shape);
  const seed = options.seed ?? DEFAULT_TEST_MODEL_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new GbtError(
      "INVALID_INPUT",
      `The test model seed must be an integer from 0 to 4294967295, got ${seed}.`,
      {
        details: { seed },
      },
    );
  }
  const target = resolve(path);
  const planned = planTensors(shape);
  const tensors: GgufTensor[] = planned.map((tensor) => ({
    name: tensor.name,
    dims: tensor.dims,
    type: tensor.type,
    data: tensorData(tensor, seed, options.endOfGeneration ?? "never"),
  }));
  const temporary = `${target}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await mkdir(dirname(target), { recursive: true });
    const written = await writeGguf(temporary, { metadata: metadataOf(shape, seed), tensors });
    await rename(temporary, target);
    const parameters = planned.reduce((sum, tensor) => sum + tensor.dims.reduce((a, b) => a * b, 1), 0);
    return { path: target, sha256: written.sha256, sizeBytes: written.sizeBytes, shape, parameters };
  } catch (error) {
    await rm(temporary, { force: true });
    if (error instanceof GbtError) throw error;
    throw new GbtError("IO_ERROR", `Could not write the test model to ${target}.`, {
      details: { path: target },
      hint: "Check that the directory is writable and has free space.",
      cause: error,
    });
  }
}

/** Path of the default test model in a models dir. */
export function testModelPath(modelsDir: string): string {
  return join(resolve(modelsDir), `${TEST_MODEL_ID}.gguf`);
}

/** Creates the default test model (`gbt-test-tiny.gguf`, tiny shape, default seed) in `modelsDir` when it is missing; returns its path. */
export async function ensureTestModel(modelsDir: string): Promise<string> {
  const path = testModelPath(modelsDir);
  try {
    await access(path);
    return path;
  } catch {
    return (await generateTestModel(path)).path;
  }
}
