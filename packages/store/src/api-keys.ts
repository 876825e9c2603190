/**
 * API-key material, the one way gbt makes and keeps secrets that clients present as Bearer tokens
 * (the node's local keys `gbt_sk_…`, the gateway's consumer keys `gbt_gk_…`): random bytes in
 * base64url after a prefix that says what the key is for, shown once at creation; only the
 * sha256 is stored, with the first 12 characters kept to recognise a key in lists. Names of keys
 * (and of the accounts that hold them) follow one rule.
 */
import { createHash, randomBytes } from "node:crypto";
import { GbtError } from "@gbt/protocol";

/** 1–64 letters, digits, spaces or . _ @ -. */
export const API_KEY_NAME_PATTERN = /^[\w .@-]{1,64}$/;

export interface NewApiKey {
  /** The secret: shown once, never stored. */
  key: string;
  /** What lists show: the key's first 12 characters. */
  prefix: string;
  /** What is stored: the sha256 of the key, hex. */
  hash: string;
}

/** The stored form of a key: its sha256, hex. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** A new key: `keyPrefix` then `bytes` random bytes in base64url. */
export function newApiKey(
  keyPrefix: string,
  bytes: number,
  random: (bytes: number) => Buffer = randomBytes,
): NewApiKey {
  const key = `${keyPrefix}${random(bytes).toString("base64url")}`;
  return { key, prefix: key.slice(0, 12), hash: hashApiKey(key) };
}

/** Throws INVALID_INPUT unless `name` is a valid name for a `what` ("key", "account"). */
export function checkApiKeyName(what: string, name: unknown): asserts name is string {
  if (typeof name !== "string" || !API_KEY_NAME_PATTERN.test(name)) {
    throw new GbtError("INVALID_INPUT", `A ${what} name is 1–64 letters, digits, spaces or . _ @ -.`, {
      details: { name: String(name) },
    });
  }
}
