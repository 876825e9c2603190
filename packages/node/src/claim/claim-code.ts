/**
 * The claim code an unclaimed node shows (`GBT-N7K4`): four characters of Crockford base32 (no I,
 * L, O or U, so nothing reads as 0 or 1), from the crypto RNG. It is kept in `claim.json` in the
 * config dir (0600, written atomically) so that a restart shows the same code, and replaced after
 * each claim so that a claim signed for an old code never works again. A corrupt or hand-edited
 * file never stops setup mode: it is replaced by a fresh code (and said so).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type GbtPaths, readJsonFile, writeJsonFile } from "@gbt/store";
import { z } from "zod";

/** Crockford's base32 alphabet: digits and letters without I, L, O, U. */
export const CLAIM_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Characters after `GBT-` in a new code (20 bits). */
export const CLAIM_CODE_LENGTH = 4;
/** What NodeClaim's schema accepts; a new code always matches it. */
export const CLAIM_CODE_PATTERN = /^GBT-[0-9A-Z]{4,8}$/;

const claimFileSchema = z.strictObject({
  version: z.literal(1),
  code: z
    .string()
    .regex(CLAIM_CODE_PATTERN)
    .refine((code) => [...code.slice(4)].every((c) => CLAIM_CODE_ALPHABET.includes(c)), {
      message: "not Crockford base32",
    }),
  createdAt: z.number().int().nonnegative(),
});
export type ClaimFile = z.infer<typeof claimFileSchema>;

/** Where the code is kept: `<configDir>/claim.json`. */
export function claimFilePath(paths: Pick<GbtPaths, "configDir">): string {
  return join(paths.configDir, "claim.json");
}

/** A fresh code from `random` (default the crypto RNG): 5 bits per character, no bias. */
export function newClaimCode(random: (bytes: number) => Uint8Array = randomBytes): string {
  const bytes = random(CLAIM_CODE_LENGTH);
  let code = "GBT-";
  for (let i = 0; i < CLAIM_CODE_LENGTH; i++) code += CLAIM_CODE_ALPHABET[(bytes[i] ?? 0) & 31];
  return code;
}

/**
 * A code as a person typed it, in canonical form: upper case, spaces and dashes inside tolerated,
 * and Crockford's look-alikes read as what they look like (O → 0, I and L → 1). Null when it cannot
 * be a claim code.
 */
export function normalizeClaimCode(typed: string): string | null {
  const body = typed
    .trim()
    .toUpperCase()
    .replace(/^GBT[-\s]*/, "")
    .replace(/[-\s]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  const code = `GBT-${body}`;
  if (!CLAIM_CODE_PATTERN.test(code) || ![...body].every((c) => CLAIM_CODE_ALPHABET.includes(c))) return null;
  return code;
}

export interface ClaimCodeOptions {
  now?: () => number;
  random?: (bytes: number) => Uint8Array;
  /** Told when a bad claim.json was replaced (never the code itself: it is not a secret, but it is not logged either). */
  onReplaced?: (reason: string) => void;
}

/** The stored code, or undefined when there is none or the file is unreadable or invalid. Never writes. */
export async function readClaimCode(paths: Pick<GbtPaths, "configDir">): Promise<string | undefined> {
  try {
    return (await readJsonFile(claimFilePath(paths), claimFileSchema, { what: "The claim file", hint: "" }))
      ?.code;
  } catch {
    return undefined;
  }
}

/** The stored code, creating (or replacing a corrupt) claim.json when needed. */
export async function ensureClaimCode(
  paths: Pick<GbtPaths, "configDir">,
  options: ClaimCodeOptions = {},
): Promise<string> {
  const path = claimFilePath(paths);
  try {
    const stored = await readJsonFile(path, claimFileSchema, { what: "The claim file", hint: "" });
    if (stored) return stored.code;
  } catch (error) {
    options.onReplaced?.(error instanceof Error ? error.message : String(error));
  }
  return rotateClaimCode(paths, options);
}

/** Writes a fresh code (after a claim, or over a bad file) and returns it. */
export async function rotateClaimCode(
  paths: Pick<GbtPaths, "configDir">,
  options: ClaimCodeOptions = {},
): Promise<string> {
  const code = newClaimCode(options.random);
  const file: ClaimFile = { version: 1, code, createdAt: Math.floor((options.now ?? Date.now)() / 1000) };
  await writeJsonFile(claimFilePath(paths), file);
  return code;
}
