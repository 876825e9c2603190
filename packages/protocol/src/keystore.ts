/**
 * Keystore files for gbt identities (node, owner, publisher keys). A keystore holds one secp256k1
 * key, either in plain hex (file mode 0600) or encrypted with scrypt + AES-256-GCM when a
 * passphrase is given. Writes are atomic (temp file + rename) so a crash never leaves half a key.
 */
import { readFile } from "node:fs/promises";
import { type Address, type Hex, isHex } from "viem";
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { GbtError } from "./errors.js";
import {
  cryptoSectionSchema,
  hexOfBytes,
  openWithPassphrase,
  sealWithPassphrase,
  writePrivateJsonFile,
} from "./passphrase-crypto.js";
import { address } from "./primitives.js";

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
    crypto: cryptoSectionSchema(hexOfBytes(32)),
  }),
]);
export type KeystoreFile = z.infer<typeof keystoreSchema>;

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
  return {
    format: "gbt-keystore",
    version: 1,
    address: account.address,
    encrypted: true,
    // The address is authenticated data: swapping it in the file breaks decryption.
    crypto: await sealWithPassphrase(
      Buffer.from(privateKey.slice(2), "hex"),
      Buffer.from(account.address.toLowerCase()),
      passphrase,
    ),
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
    const plain = await openWithPassphrase(file.crypto, Buffer.from(file.address.toLowerCase()), passphrase);
    if (plain === null) {
      throw new GbtError("WRONG_PASSPHRASE", "The passphrase does not unlock this keystore.", {
        hint: "Check the passphrase (--passphrase-file or GBT_PASSPHRASE).",
      });
    }
    privateKey = `0x${plain.toString("hex")}`;
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
  await writePrivateJsonFile(path, file);
}

/** A fresh random key. */
export function newPrivateKey(): Hex {
  return generatePrivateKey();
}

export type { Address };
