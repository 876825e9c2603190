/**
 * The key that signs settlement roots when it is not the gateway's link key: a gbt keystore named
 * by `settlement.settlerKeyFile`, unlocked with GBT_SETTLER_PASSPHRASE when encrypted. Keeping it
 * apart means a leak of the hot link key (which signs every receipt) cannot post roots, and the
 * settler role can be rotated on chain without re-keying the gateway.
 */
import { GbtError, readKeystore, unlockKeystore } from "@gbt/protocol";
import type { PrivateKeyAccount } from "viem";

export async function loadSettlerAccount(
  keyFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PrivateKeyAccount> {
  try {
    return await unlockKeystore(await readKeystore(keyFile), env.GBT_SETTLER_PASSPHRASE);
  } catch (error) {
    if (!(error instanceof GbtError)) throw error;
    throw new GbtError(
      error.code,
      `The settler key (settlement.settlerKeyFile) cannot be used: ${error.message}`,
      {
        details: { keyFile, ...error.details },
        hint:
          error.code === "PASSPHRASE_REQUIRED" || error.code === "WRONG_PASSPHRASE"
            ? "Set GBT_SETTLER_PASSPHRASE to the settler keystore's passphrase."
            : "Fix settlement.settlerKeyFile in gateway.json, or remove it to sign with the gateway key.",
        cause: error,
      },
    );
  }
}
