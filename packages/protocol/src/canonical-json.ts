/**
 * Canonical JSON (RFC 8785 style): object keys sorted by UTF-16 code units, no whitespace,
 * numbers in their shortest round-trip form. Free-form payloads are bound into signed objects
 * by the keccak256 of this text, so two parties always hash the same bytes.
 */
import { type Hex, keccak256, stringToBytes } from "viem";
import { GbtError } from "./errors.js";

export function canonicalJson(value: unknown): string {
  return write(value, "$");
}

function write(value: unknown, path: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new GbtError("INVALID_INPUT", `Cannot canonicalize a non-finite number at ${path}.`, {
          details: { path },
        });
      }
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((item, i) => write(item, `${path}[${i}]`)).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, `${path}.${k}`)}`).join(",")}}`;
    }
    default:
      throw new GbtError("INVALID_INPUT", `Cannot canonicalize a ${typeof value} at ${path}.`, {
        details: { path },
      });
  }
}

/** keccak256 of the canonical JSON of `value`: the hash field that binds a payload into a signature. */
export function hashPayload(value: unknown): Hex {
  return keccak256(stringToBytes(canonicalJson(value)));
}
