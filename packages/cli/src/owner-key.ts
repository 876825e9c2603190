/**
 * The owner (admin) key that signs jobs, shared by `gbt job create` and `gbt operator`: from
 * --key-file (a hex private key, or a gbt keystore unlocked with --passphrase-file or
 * GBT_PASSPHRASE, or a hidden prompt when allowed and stdin is a TTY) or GBT_OWNER_KEY. The key is
 * never printed, logged or put in an error.
 *
 * `gbt owner create` makes such a key file (a gbt keystore, mode 0600, encrypted when a passphrase
 * is given) and `gbt owner show` reads its address, which a keystore keeps in clear, so showing
 * it needs no passphrase.
 */
import { randomBytes } from "node:crypto";
import { link, lstat, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  createKeystore,
  GbtError,
  newPrivateKey,
  parsePrivateKey,
  readKeystore,
  unlockKeystore,
  writeKeystore,
} from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ask, isInteractive, passphraseFromFlags, readSecretFile } from "./terminal-input.js";

/** Where `gbt owner create` writes without --out: the file name the README's examples use. */
export const DEFAULT_OWNER_KEY_FILE = "owner.key";

export interface OwnerKeyOptions {
  /** Ask for an encrypted keystore's missing passphrase on the TTY (never without one). */
  promptForPassphrase?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** The owner's account; MISSING_INPUT naming the flags when there is no key. */
export async function ownerAccount(
  keyFile: string | undefined,
  passphraseFile: string | undefined,
  options: OwnerKeyOptions = {},
): Promise<LocalAccount> {
  const env = options.env ?? process.env;
  if (keyFile) {
    const text = await readSecretFile(keyFile, "owner key");
    if (text.trimStart().startsWith("{")) {
      const keystore = await readKeystore(keyFile);
      let passphrase = await passphraseFromFlags({ passphraseFile, env });
      if (passphrase === undefined && keystore.encrypted && options.promptForPassphrase && isInteractive()) {
        passphrase = await ask(`Passphrase of the owner keystore ${keyFile}`, { hidden: true });
      }
      return unlockKeystore(keystore, passphrase);
    }
    return privateKeyToAccount(parsePrivateKey(text, `The key file ${keyFile}`));
  }
  const fromEnv = env.GBT_OWNER_KEY;
  if (fromEnv) return privateKeyToAccount(parsePrivateKey(fromEnv, "GBT_OWNER_KEY"));
  throw new GbtError("MISSING_INPUT", "No owner key to sign the job with.", {
    hint: "Pass --key-file PATH (a hex private key or a gbt keystore) or set GBT_OWNER_KEY.",
  });
}

/** An owner key file as `gbt owner create` and `gbt owner show` report it (never the key). */
export interface OwnerKeyFile {
  address: Address;
  /** Absolute path of the file. */
  path: string;
  encrypted: boolean;
}

export interface CreateOwnerKeyParameters {
  /** The file to write (default `owner.key` in the working directory). */
  out?: string | undefined;
  /** Replace an existing file (its key is lost unless kept elsewhere). */
  force?: boolean | undefined;
  passphraseFile?: string | undefined;
  /** Ask for a passphrase (twice, hidden) when none is given and stdin is a TTY. */
  promptForPassphrase?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Makes a new owner key in a keystore (mode 0600, encrypted with scrypt + AES-256-GCM when a
 * passphrase is given). Never overwrites a file without `force`: ALREADY_EXISTS (exit 9).
 */
export async function createOwnerKey(parameters: CreateOwnerKeyParameters = {}): Promise<OwnerKeyFile> {
  const env = parameters.env ?? process.env;
  const path = resolve(parameters.cwd ?? process.cwd(), parameters.out ?? DEFAULT_OWNER_KEY_FILE);
  let passphrase = await passphraseFromFlags({ passphraseFile: parameters.passphraseFile, env });
  if (passphrase === undefined && parameters.promptForPassphrase && isInteractive()) {
    passphrase = await askNewPassphrase();
  }
  const keystore = await createKeystore(newPrivateKey(), passphrase);
  await writeNewFile(path, parameters.force === true, (temp) => writeKeystore(temp, keystore));
  return { address: keystore.address as Address, path, encrypted: keystore.encrypted };
}

/** A new passphrase typed twice on the TTY; empty means none (an unencrypted keystore). */
async function askNewPassphrase(): Promise<string | undefined> {
  const first = await ask("Passphrase to encrypt the owner key (empty: store unencrypted, mode 0600)", {
    hidden: true,
  });
  if (first === "") return undefined;
  const again = await ask("The same passphrase again", { hidden: true });
  if (again !== first) {
    throw new GbtError("INVALID_INPUT", "The two passphrases differ; no key was written.", {
      hint: "Run the command again and type the same passphrase twice.",
    });
  }
  return first;
}

/**
 * Writes through `write(temp)` then moves the temp file to `path`: with a hard link when the
 * file must not exist (atomic, so two runs cannot both win), with a rename under `force`.
 */
async function writeNewFile(path: string, force: boolean, write: (temp: string) => Promise<void>) {
  const temp = join(dirname(path), `.${randomBytes(6).toString("hex")}.owner-key.tmp`);
  await write(temp);
  try {
    if (force) {
      await rename(temp, path);
      return;
    }
    await link(temp, path).catch(async (error: NodeJS.ErrnoException) => {
      // A filesystem without hard links: check, then rename (not atomic, but still no overwrite by mistake).
      if (error.code !== "EPERM" && error.code !== "ENOTSUP" && error.code !== "ENOSYS") throw error;
      const taken = await lstat(path).then(
        () => true,
        () => false,
      );
      if (taken) throw Object.assign(new Error(`${path} exists`), { code: "EEXIST" });
      await rename(temp, path);
    });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "EEXIST") {
      throw new GbtError("ALREADY_EXISTS", `${path} already exists; it was left as it is.`, {
        details: { path },
        hint: "Choose another file with --out, or pass --force to replace it (its key is lost unless kept elsewhere).",
      });
    }
    throw cause;
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * The address of an owner key file: a gbt keystore (its address is in clear: no passphrase
 * needed) or a hex private key. With `passphrase`, an encrypted keystore is also unlocked, which
 * proves the passphrase (WRONG_PASSPHRASE otherwise).
 */
export async function describeOwnerKey(
  file: string,
  options: { passphrase?: string | undefined; cwd?: string } = {},
): Promise<OwnerKeyFile> {
  const path = resolve(options.cwd ?? process.cwd(), file);
  const text = await readSecretFile(path, "owner key");
  if (!text.trimStart().startsWith("{")) {
    const account = privateKeyToAccount(parsePrivateKey(text, `The key file ${path}`));
    return { address: account.address, path, encrypted: false };
  }
  const keystore = await readKeystore(path);
  // An unencrypted keystore is checked for free; an encrypted one only when asked (scrypt).
  if (!keystore.encrypted || options.passphrase !== undefined) {
    await unlockKeystore(keystore, options.passphrase);
  }
  return { address: keystore.address as Address, path, encrypted: keystore.encrypted };
}
