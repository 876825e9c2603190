/**
 * A secret box: one short secret (a cloud backend's API key) in a file of mode 0600, encrypted
 * with scrypt + AES-256-GCM under a passphrase like the keystore, or plain (still 0600) when the
 * owner has no passphrase. Writes are atomic. The secret never enters an error message.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { GbtError } from "./errors.js";
import {
  cryptoSectionSchema,
  openWithPassphrase,
  sealWithPassphrase,
  writePrivateJsonFile,
} from "./passphrase-crypto.js";

const MAX_SECRET_BYTES = 16 * 1024;

const secretBoxSchema = z.discriminatedUnion("encrypted", [
  z.strictObject({
    format: z.literal("gbt-secret"),
    version: z.literal(1),
    label: z.string().max(128),
    encrypted: z.literal(false),
    secret: z.string().min(1).max(MAX_SECRET_BYTES),
  }),
  z.strictObject({
    format: z.literal("gbt-secret"),
    version: z.literal(1),
    label: z.string().max(128),
    encrypted: z.literal(true),
    crypto: cryptoSectionSchema(
      z
        .string()
        .regex(/^[0-9a-f]+$/)
        .max(MAX_SECRET_BYTES * 2),
    ),
  }),
]);
export type SecretBoxFile = z.infer<typeof secretBoxSchema>;

/** Seals a secret; encrypted when a passphrase is given. `label` (e.g. "backend-api-key") is authenticated. */
export async function sealSecret(secret: string, label: string, passphrase?: string): Promise<SecretBoxFile> {
  if (secret.length === 0 || Buffer.byteLength(secret) > MAX_SECRET_BYTES) {
    throw new GbtError("INVALID_INPUT", `The secret must be 1 to ${MAX_SECRET_BYTES} bytes.`);
  }
  if (passphrase === undefined) return { format: "gbt-secret", version: 1, label, encrypted: false, secret };
  return {
    format: "gbt-secret",
    version: 1,
    label,
    encrypted: true,
    crypto: await sealWithPassphrase(Buffer.from(secret, "utf8"), Buffer.from(label), passphrase),
  };
}

/** Opens a sealed secret. PASSPHRASE_REQUIRED / WRONG_PASSPHRASE like a keystore. */
export async function openSecret(file: SecretBoxFile, passphrase?: string): Promise<string> {
  if (!file.encrypted) return file.secret;
  if (passphrase === undefined) {
    throw new GbtError("PASSPHRASE_REQUIRED", `The ${file.label} is encrypted and no passphrase was given.`, {
      hint: "Pass --passphrase-file FILE or set GBT_PASSPHRASE (the node's passphrase).",
    });
  }
  const plain = await openWithPassphrase(file.crypto, Buffer.from(file.label), passphrase);
  if (plain === null) {
    throw new GbtError("WRONG_PASSPHRASE", `The passphrase does not unlock the ${file.label}.`, {
      hint: "Check the passphrase (--passphrase-file or GBT_PASSPHRASE); it is the node key's passphrase.",
    });
  }
  return plain.toString("utf8");
}

/** Reads and validates a secret box file (without opening it). */
export async function readSecretBox(path: string): Promise<SecretBoxFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === "ENOENT";
    throw new GbtError(missing ? "CONFIG_INVALID" : "IO_ERROR", `Cannot read the secret file ${path}.`, {
      details: { path },
      hint: "Run `gbt setup` again with the key file (e.g. --backend-api-key-file).",
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GbtError("CONFIG_INVALID", `The secret file ${path} is not valid JSON.`, { details: { path } });
  }
  const parsed = secretBoxSchema.safeParse(json);
  if (!parsed.success) {
    throw new GbtError("CONFIG_INVALID", `The secret file ${path} is malformed.`, {
      details: { path, field: parsed.error.issues[0]?.path.join(".") },
    });
  }
  return parsed.data;
}

/** Writes a secret box atomically with mode 0600. */
export async function writeSecretBox(path: string, file: SecretBoxFile): Promise<void> {
  await writePrivateJsonFile(path, file);
}
