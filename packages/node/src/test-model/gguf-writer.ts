/**
 * A small GGUF v3 writer: typed metadata values (scalars and arrays), tensor infos, and tensor
 * data streamed to disk with 32-byte alignment. It exists so gbt can build its own models (the
 * pipeline-test model) without downloading anything; it writes the plain F32/F16 tensor types
 * only, not quantized blocks.
 *
 * Tensor data comes from a source function per tensor that yields chunks on demand, so a model of
 * several GB is written with a few MB of memory. The file is hashed (sha256) as it is written.
 * Layout (little-endian): magic `GGUF`, version u32, tensor count u64, KV count u64, KV pairs,
 * tensor infos, zero padding to the alignment, then each tensor at a multiple of the alignment
 * from the start of the data section.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { GbtError } from "@gbt/protocol";

/** GGUF metadata value types (ggml's `gguf_type`). */
export const GgufValueType = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

/** The tensor types this writer supports (ggml's `ggml_type` numbering), with their element sizes. */
export const GgmlTensorType = { F32: 0, F16: 1 } as const;
export type GgmlTensorTypeName = keyof typeof GgmlTensorType;
const tensorElementBytes: Record<GgmlTensorTypeName, number> = { F32: 4, F16: 2 };

type NumberScalarType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
type BigintScalarType = "u64" | "i64";
export type GgufScalarType = NumberScalarType | BigintScalarType | "bool" | "string";

/** The JavaScript value carried by each scalar type. */
export type GgufScalarValue<T extends GgufScalarType> = T extends NumberScalarType
  ? number
  : T extends BigintScalarType
    ? bigint
    : T extends "bool"
      ? boolean
      : string;

/** One typed metadata value. Build them with {@link gguf}: the GGUF key types are checked strictly by llama.cpp. */
export type GgufValue =
  | { [T in GgufScalarType]: { type: T; value: GgufScalarValue<T> } }[GgufScalarType]
  | {
      [T in GgufScalarType]: { type: "array"; of: T; values: readonly GgufScalarValue<T>[] };
    }[GgufScalarType];

/** Constructors of typed metadata values: `gguf.u32(512)`, `gguf.array("f32", scores)`. */
export const gguf = {
  u8: (value: number): GgufValue => ({ type: "u8", value }),
  i8: (value: number): GgufValue => ({ type: "i8", value }),
  u16: (value: number): GgufValue => ({ type: "u16", value }),
  i16: (value: number): GgufValue => ({ type: "i16", value }),
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  f64: (value: number): GgufValue => ({ type: "f64", value }),
  u64: (value: bigint): GgufValue => ({ type: "u64", value }),
  i64: (value: bigint): GgufValue => ({ type: "i64", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  string: (value: string): GgufValue => ({ type: "string", value }),
  array: <T extends GgufScalarType>(of: T, values: readonly GgufScalarValue<T>[]): GgufValue =>
    ({ type: "array", of, values }) as GgufValue,
};

/** A chunk source: yields the tensor's bytes in order. The writer consumes each chunk before asking for the next, so a source may reuse its buffer. */
export type TensorDataSource = () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

export interface GgufTensor {
  name: string;
  /** Dimensions in ggml order: the contiguous (input) dimension first. */
  dims: readonly number[];
  type: GgmlTensorTypeName;
  data: TensorDataSource;
}

export interface GgufFile {
  /** Metadata in file order. `general.alignment` is added when absent and must match `alignment` when present. */
  metadata: ReadonlyArray<readonly [key: string, value: GgufValue]>;
  tensors: readonly GgufTensor[];
  /** Alignment of the data section and of every tensor (default 32). */
  alignment?: number;
}

export interface WrittenGguf {
  /** Hex sha256 of the whole file. */
  sha256: string;
  sizeBytes: number;
}

export const GGUF_VERSION = 3;
export const DEFAULT_GGUF_ALIGNMENT = 32;
const WRITE_BUFFER_BYTES = 1 << 20;

function invalid(message: string, details: Record<string, unknown>): GbtError {
  return new GbtError("INVALID_INPUT", message, { details });
}

/** Bytes of one tensor's data (before alignment padding). */
export function tensorByteLength(tensor: Pick<GgufTensor, "dims" | "type">): number {
  return tensor.dims.reduce((product, dim) => product * dim, 1) * tensorElementBytes[tensor.type];
}

const alignUp = (value: number, alignment: number) => Math.ceil(value / alignment) * alignment;

/** Appends little-endian values into a growing list of buffers (the header is small: KB to a few MB). */
class HeaderEncoder {
  private readonly parts: Buffer[] = [];
  length = 0;

  private push(buffer: Buffer): void {
    this.parts.push(buffer);
    this.length += buffer.length;
  }

  scalar(type: GgufScalarType, value: number | bigint | boolean | string, key: string): void {
    const fail = () =>
      invalid(`GGUF value of '${key}' does not fit ${type}: ${String(value)}.`, { key, type });
    let buffer: Buffer;
    switch (type) {
      case "string": {
        const bytes = Buffer.from(value as string, "utf8");
        this.u64(BigInt(bytes.length));
        this.push(bytes);
        return;
      }
      case "bool":
        if (typeof value !== "boolean") throw fail();
        this.push(Buffer.from([value ? 1 : 0]));
        return;
      case "u64":
      case "i64": {
        if (typeof value !== "bigint") throw fail();
        buffer = Buffer.alloc(8);
        try {
          if (type === "u64") buffer.writeBigUInt64LE(value);
          else buffer.writeBigInt64LE(value);
        } catch {
          throw fail();
        }
        break;
      }
      default: {
        if (typeof value !== "number" || Number.isNaN(value)) throw fail();
        const isFloat = type === "f32" || type === "f64";
        if (!isFloat && !Number.isInteger(value)) throw fail();
        buffer = Buffer.alloc(
          type === "f64" ? 8 : type === "u8" || type === "i8" ? 1 : type === "u16" || type === "i16" ? 2 : 4,
        );
        try {
          if (type === "u8") buffer.writeUInt8(value);
          else if (type === "i8") buffer.writeInt8(value);
          else if (type === "u16") buffer.writeUInt16LE(value);
          else if (type === "i16") buffer.writeInt16LE(value);
          else if (type === "u32") buffer.writeUInt32LE(value);
          else if (type === "i32") buffer.writeInt32LE(value);
          else if (type === "f32") buffer.writeFloatLE(value);
          else buffer.writeDoubleLE(value);
        } catch {
          throw fail();
        }
      }
    }
    this.push(buffer);
  }

  u32(value: number): void {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32LE(value);
    this.push(buffer);
  }

  u64(value: bigint): void {
    const buffer = Buffer.alloc(8);
    buffer.writeBigUInt64LE(value);
    this.push(buffer);
  }

  string(value: string): void {
    this.scalar("string", value, "(name)");
  }

  value(key: string, value: GgufValue): void {
    this.u32(GgufValueType[value.type]);
    if (value.type === "array") {
      this.u32(GgufValueType[value.of]);
      this.u64(BigInt(value.values.length));
      for (const item of value.values) this.scalar(value.of, item, key);
    } else {
      this.scalar(value.type, value.value, key);
    }
  }

  zeros(count: number): void {
    if (count > 0) this.push(Buffer.alloc(count));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/** The header (everything before the data section, padding included) and each tensor's offset in the data section. */
export function encodeGgufHeader(
  file: Omit<GgufFile, "tensors"> & { tensors: ReadonlyArray<Omit<GgufTensor, "data">> },
): {
  header: Buffer;
  offsets: number[];
} {
  const alignment = file.alignment ?? DEFAULT_GGUF_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw invalid(`GGUF alignment must be a positive multiple of 8, got ${alignment}.`, { alignment });
  }
  const keys = new Set<string>();
  for (const [key] of file.metadata) {
    if (keys.has(key)) throw invalid(`GGUF metadata key '${key}' appears twice.`, { key });
    keys.add(key);
  }
  const metadata = [...file.metadata];
  const declaredAlignment = metadata.find(([key]) => key === "general.alignment")?.[1];
  if (declaredAlignment === undefined) metadata.push(["general.alignment", gguf.u32(alignment)]);
  else if (declaredAlignment.type !== "u32" || declaredAlignment.value !== alignment) {
    throw invalid("GGUF general.alignment must be a u32 equal to the alignment used.", { alignment });
  }

  const encoder = new HeaderEncoder();
  encoder.u32(0x46554747); // "GGUF" read as a little-endian u32
  encoder.u32(GGUF_VERSION);
  encoder.u64(BigInt(file.tensors.length));
  encoder.u64(BigInt(metadata.length));
  for (const [key, value] of metadata) {
    encoder.string(key);
    encoder.value(key, value);
  }

  const names = new Set<string>();
  const offsets: number[] = [];
  let offset = 0;
  for (const tensor of file.tensors) {
    if (names.has(tensor.name))
      throw invalid(`GGUF tensor '${tensor.name}' appears twice.`, { name: tensor.name });
    names.add(tensor.name);
    if (
      tensor.dims.length === 0 ||
      tensor.dims.length > 4 ||
      !tensor.dims.every((dim) => Number.isSafeInteger(dim) && dim > 0)
    ) {
      throw invalid(`GGUF tensor '${tensor.name}' needs 1 to 4 positive integer dims.`, {
        name: tensor.name,
        dims: tensor.dims,
      });
    }
    encoder.string(tensor.name);
    encoder.u32(tensor.dims.length);
    for (const dim of tensor.dims) encoder.u64(BigInt(dim));
    encoder.u32(GgmlTensorType[tensor.type]);
    encoder.u64(BigInt(offset));
    offsets.push(offset);
    offset = alignUp(offset + tensorByteLength(tensor), alignment);
  }
  encoder.zeros(alignUp(encoder.length, alignment) - encoder.length);
  return { header: encoder.toBuffer(), offsets };
}

/**
 * Writes a GGUF file to `path` (created or truncated), streaming each tensor's chunks and hashing
 * the bytes as they go. A tensor source that yields more or fewer bytes than its dims and type
 * call for fails the write. The caller owns atomicity (write to a temporary path, then rename).
 */
export async function writeGguf(path: string, file: GgufFile): Promise<WrittenGguf> {
  const alignment = file.alignment ?? DEFAULT_GGUF_ALIGNMENT;
  const { header } = encodeGgufHeader(file);
  const hash = createHash("sha256");
  const handle = await open(path, "w");
  let sizeBytes = 0;
  const pending = Buffer.alloc(WRITE_BUFFER_BYTES);
  let pendingLength = 0;

  const writeThrough = async (bytes: Uint8Array) => {
    hash.update(bytes);
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
    sizeBytes += bytes.length;
  };
  const flush = async () => {
    if (pendingLength === 0) return;
    await writeThrough(pending.subarray(0, pendingLength));
    pendingLength = 0;
  };
  // Small chunks are coalesced into one buffer; large ones go straight to the file.
  const append = async (bytes: Uint8Array) => {
    if (bytes.length >= WRITE_BUFFER_BYTES) {
      await flush();
      await writeThrough(bytes);
      return;
    }
    if (pendingLength + bytes.length > WRITE_BUFFER_BYTES) await flush();
    pending.set(bytes, pendingLength);
    pendingLength += bytes.length;
  };

  try {
    await append(header);
    const padding = new Uint8Array(alignment);
    for (const tensor of file.tensors) {
      const expected = tensorByteLength(tensor);
      let received = 0;
      for await (const chunk of tensor.data()) {
        received += chunk.length;
        if (received > expected) break;
        await append(chunk);
      }
      if (received !== expected) {
        throw invalid(`GGUF tensor '${tensor.name}' produced ${received} bytes, expected ${expected}.`, {
          name: tensor.name,
          expected,
          received,
        });
      }
      await append(padding.subarray(0, alignUp(expected, alignment) - expected));
    }
    await flush();
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest("hex"), sizeBytes };
}

/**
 * Converts float32 values to IEEE half-precision bit patterns (round to nearest, ties to even;
 * overflow to ±Inf; subnormals kept; NaN stays NaN). `out` must be at least as long as `values`.
 */
export function float32ToFloat16Bits(values: Float32Array, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let index = 0; index < bits.length; index++) {
    out[index] = float16BitsOf(bits[index] as number);
  }
}

function float16BitsOf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 112; // rebias 127 → 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: value = m × 2^-24; below half the smallest subnormal it rounds to zero.
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const truncated = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return (
      sign | (truncated + (remainder > halfway || (remainder === halfway && (truncated & 1) === 1) ? 1 : 0))
    );
  }
  const truncated = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to 0x7c00 (Inf), as rounding should.
  return sign | (truncated + (remainder > 0x1000 || (remainder === 0x1000 && (truncated & 1) === 1) ? 1 : 0));
}
