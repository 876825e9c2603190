/**
 * What the keystore and the secret box share: a passphrase-derived key (scrypt) sealing bytes with
 * AES-256-GCM and authenticated data, the `crypto` section that records it, and the atomic write
 * of a file only its owner may read (mode 0600, temp file + fsync + rename).
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from "node:crypto";
import { chmod, mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";

const KDF = { n: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;

/** A hex string of exactly `bytes` bytes. */
export const hexOfBytes = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

/** The `crypto` section of a sealed file; `ciphertext` is the caller's (its length is theirs). */
export function cryptoSectionSchema<C extends z.ZodType<string>>(ciphertext: C) {
  return z.strictObject({
    kdf: z.literal("scrypt"),
    kdfparams: z.strictObject({
      n: z
        .number()
        .int()
        .min(2 ** 10)
        .max(2 ** 20),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
      salt: hexOfBytes(16),
    }),
    cipher: z.literal("aes-256-gcm"),
    iv: hexOfBytes(12),
    tag: hexOfBytes(16),
    ciphertext,
  });
}

export interface CryptoSection {
  kdf: "scrypt";
  kdfparams: { n: number; r: number; p: number; salt: string };
  cipher: "aes-256-gcm";
  iv: string;
  tag: string;
  ciphertext: string;
}

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

/** Seals `plain` under `passphrase`; `aad` is authenticated (changing it in the file breaks opening). */
export async function sealWithPassphrase(
  plain: Buffer,
  aad: Buffer,
  passphrase: string,
): Promise<CryptoSection> {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await scrypt(passphrase, salt, KDF);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    kdf: "scrypt",
    kdfparams: { n: KDF.n, r: KDF.r, p: KDF.p, salt: salt.toString("hex") },
    cipher: "aes-256-gcm",
    iv: iv.toString("hex"),
    tag: cipher.getAuthTag().toString("hex"),
    ciphertext: ciphertext.toString("hex"),
  };
}

/** Opens a sealed section; null when the passphrase (or the authenticated data) does not match. */
export async function openWithPassphrase(
  crypto: CryptoSection,
  aad: Buffer,
  passphrase: string,
): Promise<Buffer | null> {
  const key = await scrypt(passphrase, Buffer.from(crypto.kdfparams.salt, "hex"), crypto.kdfparams);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(crypto.iv, "hex"));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(crypto.tag, "hex"));
    return Buffer.concat([decipher.update(Buffer.from(crypto.ciphertext, "hex")), decipher.final()]);
  } catch {
    return null;
  }
}

/** Writes `value` as JSON, atomically, readable by its owner only (mode 0600; its dir 0700 when made). */
export async function writePrivateJsonFile(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`);
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
