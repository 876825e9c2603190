/**
 * The gateway's own secrets in its data dir: the key it countersigns receipts with and nodes
 * address registrations to (`gateway-key.json`, a gbt keystore, 0600, encrypted when a passphrase
 * is given), and the admin token of its admin API (`admin-token`, 0600). Both are created on first
 * start and kept afterwards. The CLI reads the admin token from here too (`readGatewayAdminToken`).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createKeystore,
  GbtError,
  newPrivateKey,
  readKeystore,
  unlockKeystoreKey,
  writeKeystore,
} from "@gbt/protocol";
import type { Hex, PrivateKeyAccount } from "viem";

export interface GatewaySecrets {
  account: PrivateKeyAccount;
  /** For the native countersignature path; kept in memory only, never logged. */
  privateKey: Hex;
  adminToken: string;
}

export function gatewayKeyPath(dataDir: string): string {
  return join(dataDir, "gateway-key.json");
}

export function adminTokenPath(dataDir: string): string {
  return join(dataDir, "admin-token");
}

/** Loads or creates the gateway key and admin token. `adminToken` (e.g. from the env) overrides the file. */
export async function ensureGatewaySecrets(
  dataDir: string,
  options: { passphrase?: string; adminToken?: string } = {},
): Promise<GatewaySecrets> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const keyPath = gatewayKeyPath(dataDir);
  let unlocked: { account: PrivateKeyAccount; privateKey: Hex };
  try {
    unlocked = await unlockKeystoreKey(await readKeystore(keyPath), options.passphrase);
  } catch (error) {
    if (!(error instanceof GbtError && error.code === "KEYSTORE_MISSING")) throw error;
    await writeKeystore(keyPath, await createKeystore(newPrivateKey(), options.passphrase));
    unlocked = await unlockKeystoreKey(await readKeystore(keyPath), options.passphrase);
  }
  const { account, privateKey } = unlocked;
  if (options.adminToken !== undefined) {
    if (options.adminToken.length < 16) {
      throw new GbtError("CONFIG_INVALID", "The admin token must be at least 16 characters.", {
        hint: "Use a long random value, e.g. `openssl rand -hex 32`.",
      });
    }
    return { account, privateKey, adminToken: options.adminToken };
  }
  return { account, privateKey, adminToken: await ensureAdminToken(adminTokenPath(dataDir)) };
}

async function ensureAdminToken(path: string): Promise<string> {
  try {
    const existing = (await readFile(path, "utf8")).trim();
    if (existing.length >= 16) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = `gbt_admin_${randomBytes(24).toString("base64url")}`;
  const handle = await open(path, "w", 0o600);
  try {
    await handle.writeFile(`${token}\n`);
  } finally {
    await handle.close();
  }
  return token;
}

/**
 * The admin token for the CLI: `env.GBT_GATEWAY_ADMIN_TOKEN`, else the first readable
 * `<data dir>/admin-token` of `dataDirs` (a gateway's, then `gbt up`'s).
 */
export async function readGatewayAdminToken(
  dataDirs: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (env.GBT_GATEWAY_ADMIN_TOKEN) return env.GBT_GATEWAY_ADMIN_TOKEN;
  const paths = dataDirs.map(adminTokenPath);
  for (const path of paths) {
    try {
      const token = (await readFile(path, "utf8")).trim();
      if (token.length > 0) return token;
    } catch {
      // try the next place
    }
  }
  throw new GbtError("MISSING_INPUT", `No admin token at ${paths.join(" or ")}.`, {
    hint: "Set GBT_GATEWAY_ADMIN_TOKEN, or pass --data-dir of the gateway's state.",
  });
}
