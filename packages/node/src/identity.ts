/**
 * The node's identity: one secp256k1 key in a keystore file. Creating is idempotent: an
 * existing identity is kept (and its passphrase checked) unless `force` replaces it.
 */
import { access } from "node:fs/promises";
import {
  createKeystore,
  GbtError,
  type KeystoreFile,
  newPrivateKey,
  readKeystore,
  unlockKeystore,
  writeKeystore,
} from "@gbt/protocol";
import type { Address, Hex, PrivateKeyAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export interface EnsureIdentityParameters {
  keystorePath: string;
  /** Encrypts the keystore; also checked against an existing encrypted one. */
  passphrase?: string;
  /** Import this key instead of generating one. */
  importKey?: Hex;
  /** Replace an existing identity. */
  force?: boolean;
}

export interface EnsureIdentityResult {
  address: Address;
  encrypted: boolean;
  /** "created", "imported", "kept", "encrypted" (an existing plain keystore got a passphrase) or "replaced". */
  action: "created" | "imported" | "kept" | "encrypted" | "replaced";
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function ensureIdentity(parameters: EnsureIdentityParameters): Promise<EnsureIdentityResult> {
  const { keystorePath, passphrase, importKey, force = false } = parameters;
  if (await exists(keystorePath)) {
    const current = await readKeystore(keystorePath);
    if (!force) {
      if (importKey && privateKeyToAccount(importKey).address !== current.address) {
        throw new GbtError("ALREADY_EXISTS", `This node already has an identity (${current.address}).`, {
          details: { address: current.address, keystore: keystorePath },
          hint: "Pass --force to replace it with the imported key (the old key is lost unless you backed it up).",
        });
      }
      if (current.encrypted) {
        // Proves the passphrase before anything else happens; never rewrites the file.
        if (passphrase !== undefined) await unlockKeystore(current, passphrase);
        return { address: current.address, encrypted: true, action: "kept" };
      }
      if (passphrase !== undefined) {
        await writeKeystore(keystorePath, await createKeystore(current.privateKey as Hex, passphrase));
        return { address: current.address, encrypted: true, action: "encrypted" };
      }
      return { address: current.address, encrypted: false, action: "kept" };
    }
    const file = await createKeystore(importKey ?? newPrivateKey(), passphrase);
    await writeKeystore(keystorePath, file);
    return { address: file.address, encrypted: file.encrypted, action: "replaced" };
  }
  const file: KeystoreFile = await createKeystore(importKey ?? newPrivateKey(), passphrase);
  await writeKeystore(keystorePath, file);
  return { address: file.address, encrypted: file.encrypted, action: importKey ? "imported" : "created" };
}

/** Loads the node key for signing. */
export async function loadNodeAccount(keystorePath: string, passphrase?: string): Promise<PrivateKeyAccount> {
  return unlockKeystore(await readKeystore(keystorePath), passphrase);
}
