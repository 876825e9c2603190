/**
 * The owner (admin) key that signs jobs, shared by `gbt job create` and `gbt operator`: from
 * --key-file (a hex private key, or a gbt keystore unlocked with --passphrase-file or
 * GBT_PASSPHRASE, or a hidden prompt when allowed and stdin is a TTY) or GBT_OWNER_KEY. The key is
 * never printed, logged or put in an error.
 */
import { GbtError, parsePrivateKey, readKeystore, unlockKeystore } from "@gbt/protocol";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ask, isInteractive, passphraseFromFlags, readSecretFile } from "./terminal-input.js";

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
