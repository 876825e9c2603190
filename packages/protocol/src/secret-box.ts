/**
 * A secret box: one short secret (a cloud backend's API key) in a file of mode 0600, encrypted
 * with scrypt + AES-256-GCM under a passphrase like the keystore, or plain (still 0600) when the
 * owner has no passphrase. Writes are atomic. The secret never enters an error message.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { GbtError } from "./errors.js";

const KDF = { n: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;
const MAX_SECRET_BYTES = 16 * 1024;
const hexOf = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

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
    crypto: z.strictObject({
      kdf: z.literal("scrypt"),
      kdfparams: z.strictObject({
        n: z
          .number()
          .int()
          .min(2 ** 10)
          .max(2 ** 20),
        r: z.number().int().min(1).max(32),
        p: z.number().int().min(1).max(16),
        salt: hexOf(16),
      }),
      cipher: z.literal("aes-256-gcm"),
      iv: hexOf(12),
      tag: hexOf(16),
      ciphertext: z
        .string()
        .regex(/^[0-9a-f]+$/)
        .max(MAX_SECRET_BYTES * 2),
    }),
  }),
]);
export type SecretBoxFile = z.infer<typeof secretBoxSchema>;

function scrypt(
  passphrase: string,
  salt: Buffer,
  params: { n: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(
      passphrase.normalize("NFKC"),
      salt,
      KDF.keyLength,
      { N: params.n, r: params.r, p: params.p, maxmem: 256 * params.n * params.r + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** Seals a secret; encrypted when a passphrase is given. `label` (e.g. "backend-api-key") is authenticated. */
export async function sealSecret(secret: string, label: string, passphrase?: string): Promise<SecretBoxFile> {
  if (secret.length === 0 || Buffer.byteLength(secret) > MAX_SECRET_BYTES) {
    throw new GbtError("INVALID_INPUT", `The secret must be 1 to ${MAX_SECRET_BYTES} bytes.`);
  }
  if (passphrase === undefined) return { format: "gbt-secret", version: 1, label, encrypted: false, secret };
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await scrypt(passphrase, salt, KDF);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(label));
  const ciphertext = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return {
    format: "gbt-secret",
    version: 1,
    label,
    encrypted: true,
    crypto: {
      kdf: "scrypt",
      kdfparams: { n: KDF.n, r: KDF.r, p: KDF.p, salt: salt.toString("hex") },
      cipher: "aes-256-gcm",
      iv: iv.toString("hex"),
      tag: cipher.getAuthTag().toString("hex"),
      ciphertext: ciphertext.toString("hex"),
    },
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
  const { kdfparams, iv, tag, ciphertext } = file.crypto;
  const key = await scrypt(passphrase, Buffer.from(kdfparams.salt, "hex"), kdfparams);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "hex"));
    decipher.setAAD(Buffer.from(file.label));
    decipher.setAuthTag(Buffer.from(tag, "hex"));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, "hex")), decipher.final()]).toString(
      "utf8",
    );
  } catch {
    throw new GbtError("WRONG_PASSPHRASE", `The passphrase does not unlock the ${file.label}.`, {
      hint: "Check the passphrase (--passphrase-file or GBT_PASSPHRASE); it is the node key's passphrase.",
    });
  }
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
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (cause) {
    await rm(temp, { force: true });
    throw cause;
  }
}
