/**
 * Keystore files for gbt identities (node, owner, publisher keys). A keystore holds one secp256k1
 * key, either in plain hex (file mode 0600) or encrypted with scrypt + AES-256-GCM when a
 * passphrase is given. Writes are atomic (temp file + rename) so a crash never leaves half a key.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { type Address, type Hex, isHex } from "viem";
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { GbtError } from "./errors.js";
import { address } from "./primitives.js";

const KDF = { n: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));

const keystoreSchema = z.discriminatedUnion("encrypted", [
  z.strictObject({
    format: z.literal("gbt-keystore"),
    version: z.literal(1),
    address,
    encrypted: z.literal(false),
    privateKey: z.string().regex(/^0x[0-9a-f]{64}$/),
  }),
  z.strictObject({
    format: z.literal("gbt-keystore"),
    version: z.literal(1),
    address,
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
        salt: hex(16),
      }),
      cipher: z.literal("aes-256-gcm"),
      iv: hex(12),
      tag: hex(16),
      ciphertext: hex(32),
    }),
  }),
]);
export type KeystoreFile = z.infer<typeof keystoreSchema>;

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

/** Checks a private key given by a user (file, env var) and returns it normalised. */
export function parsePrivateKey(text: string, source: string): Hex {
  const trimmed = text.trim();
  const key = (trimmed.startsWith("0x") ? trimmed : `0x${trimmed}`).toLowerCase();
  if (!isHex(key) || key.length !== 66 || /^0x0+$/.test(key)) {
    throw new GbtError("INVALID_KEY", `${source} does not hold a secp256k1 private key.`, {
      hint: "Expected 64 hex characters (optionally 0x-prefixed) on one line.",
    });
  }
  try {
    privateKeyToAccount(key);
  } catch (cause) {
    throw new GbtError("INVALID_KEY", `${source} does not hold a valid secp256k1 private key.`, { cause });
  }
  return key;
}

/** Builds the keystore document for a key; encrypts it when a passphrase is given. */
export async function createKeystore(privateKey: Hex, passphrase?: string): Promise<KeystoreFile> {
  const account = privateKeyToAccount(privateKey);
  if (passphrase === undefined) {
    return { format: "gbt-keystore", version: 1, address: account.address, encrypted: false, privateKey };
  }
  if (passphrase.length === 0) {
    throw new GbtError("INVALID_INPUT", "The passphrase is empty.", {
      hint: "Give a non-empty passphrase, or none for an unencrypted keystore.",
    });
  }
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await scrypt(passphrase, salt, KDF);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  // The address is authenticated data: swapping it in the file breaks decryption.
  cipher.setAAD(Buffer.from(account.address.toLowerCase()));
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), "hex")), cipher.final()]);
  return {
    format: "gbt-keystore",
    version: 1,
    address: account.address,
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

/** Decrypts a keystore document into an account. A wrong passphrase throws WRONG_PASSPHRASE. */
export async function unlockKeystore(file: KeystoreFile, passphrase?: string): Promise<PrivateKeyAccount> {
  return (await unlockKeystoreKey(file, passphrase)).account;
}

/**
 * Decrypts a keystore document into its private key and account, for callers that sign on a
 * native path (the gateway's countersignatures). Keep the key in memory only.
 */
export async function unlockKeystoreKey(
  file: KeystoreFile,
  passphrase?: string,
): Promise<{ account: PrivateKeyAccount; privateKey: Hex }> {
  let privateKey: Hex;
  if (!file.encrypted) {
    privateKey = file.privateKey as Hex;
  } else {
    if (passphrase === undefined) {
      throw new GbtError("PASSPHRASE_REQUIRED", "The keystore is encrypted and no passphrase was given.", {
        hint: "Pass --passphrase-file FILE or set GBT_PASSPHRASE.",
      });
    }
    const { kdfparams, iv, tag, ciphertext } = file.crypto;
    const key = await scrypt(passphrase, Buffer.from(kdfparams.salt, "hex"), kdfparams);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "hex"));
      decipher.setAAD(Buffer.from(file.address.toLowerCase()));
      decipher.setAuthTag(Buffer.from(tag, "hex"));
      const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, "hex")), decipher.final()]);
      privateKey = `0x${plain.toString("hex")}`;
    } catch {
      throw new GbtError("WRONG_PASSPHRASE", "The passphrase does not unlock this keystore.", {
        hint: "Check the passphrase (--passphrase-file or GBT_PASSPHRASE).",
      });
    }
  }
  const account = privateKeyToAccount(privateKey);
  if (account.address !== file.address) {
    throw new GbtError("KEYSTORE_INVALID", "The keystore's key does not match its address.", {
      details: { address: file.address },
    });
  }
  return { account, privateKey };
}

/** Reads and validates a keystore file (without unlocking it). */
export async function readKeystore(path: string): Promise<KeystoreFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") {
      throw new GbtError("KEYSTORE_MISSING", `No keystore at ${path}.`, {
        details: { path },
        hint: "Run `gbt setup` first.",
      });
    }
    throw new GbtError("IO_ERROR", `Cannot read the keystore ${path}.`, { details: { path }, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GbtError("KEYSTORE_INVALID", `The keystore ${path} is not valid JSON.`, { details: { path } });
  }
  const parsed = keystoreSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GbtError(
      "KEYSTORE_INVALID",
      `The keystore ${path} is malformed at ${issue?.path.join(".") || "(root)"}.`,
      {
        details: { path, field: issue?.path.join(".") },
      },
    );
  }
  return parsed.data;
}

/** Writes a keystore atomically with mode 0600. */
export async function writeKeystore(path: string, file: KeystoreFile): Promise<void> {
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

/** A fresh random key. */
export function newPrivateKey(): Hex {
  return generatePrivateKey();
}

export type { Address };
