/** Bounded zod primitives shared by every schema: addresses, hashes, ids, timestamps. */
import { getAddress, isAddress } from "viem";
import { z } from "zod";

/** A 0x-prefixed EVM address; normalised to its checksummed form. */
export const address = z
  .string()
  .max(42)
  .refine((value) => isAddress(value, { strict: false }), {
    message: "must be a 0x-prefixed 20-byte address",
  })
  .transform((value) => getAddress(value));

export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex string")
  .transform((value) => value.toLowerCase() as `0x${string}`);

export const signature = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, "must be a 0x-prefixed 65-byte signature")
  .transform((value) => value.toLowerCase() as `0x${string}`);

/** Unix time in seconds. */
export const unixSeconds = z
  .number()
  .int()
  .min(0)
  .max(2 ** 40);
export const uint32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
export const uint64 = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const uint16 = z.number().int().min(0).max(65_535);
export const chainId = z
  .number()
  .int()
  .min(1)
  .max(2 ** 32);

/** True when `text` holds a C0 control character or DEL. */
export function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** Printable text of bounded length: no control characters. */
export function boundedText(max: number) {
  return z
    .string()
    .max(max)
    .refine((value) => !hasControlCharacters(value), { message: "must not contain control characters" });
}

/** Identifiers: letters, digits and a few separators. */
export function identifier(max = 128) {
  return z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/, "must be letters, digits and . _ : / @ + -");
}

export const uuid = z.string().uuid();
