/**
 * The publisher key of `gbt model publish`: GBT_PUBLISHER_KEY (a hex key, the CI way), else
 * --key-file (a hex key or a gbt keystore, unlocked with --passphrase-file or GBT_PASSPHRASE).
 * The key is never printed or put in an error.
 */
import { GbtError, parsePrivateKey, readKeystore, unlockKeystore } from "@gbt/protocol";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { passphraseFromFlags, readSecretFile } from "./terminal-input.js";

export interface PublisherKeySources {
  keyFile?: string | undefined;
  passphraseFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export async function publisherAccount({
  keyFile,
  passphraseFile,
  env = process.env,
}: PublisherKeySources): Promise<LocalAccount> {
  if (keyFile) {
    const text = await readSecretFile(keyFile, "publisher key");
    if (text.trimStart().startsWith("{")) {
      const keystore = await readKeystore(keyFile);
      return unlockKeystore(
        keystore,
        await passphraseFromFlags({ ...(passphraseFile ? { passphraseFile } : {}), env }),
      );
    }
    return privateKeyToAccount(parsePrivateKey(text, `The key file ${keyFile}`));
  }
  const fromEnv = env.GBT_PUBLISHER_KEY;
  if (fromEnv) return privateKeyToAccount(parsePrivateKey(fromEnv, "GBT_PUBLISHER_KEY"));
  throw new GbtError("MISSING_INPUT", "No publisher key to sign the manifest with.", {
    hint: "Set GBT_PUBLISHER_KEY (a hex private key, e.g. from a CI secret) or pass --key-file PATH (hex key or gbt keystore).",
  });
}
