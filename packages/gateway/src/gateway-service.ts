/**
 * `gbt gateway serve` as a service: config file → secrets → server. Also the offline admin
 * actions the CLI runs against the gateway's database (accounts and keys), which a running
 * gateway picks up within a second.
 */
import { digestSignerNative } from "@gbt/protocol";
import type { Logger } from "pino";
import {
  type AccountInfo,
  type AccountStore,
  AccountStore as Accounts,
  type CreatedApiKey,
} from "./auth/accounts.js";
import { type GatewayConfig, loadGatewayConfig } from "./gateway-config.js";
import { withGatewayDatabase } from "./gateway-database.js";
import { ensureGatewaySecrets } from "./gateway-identity.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { createModelRegistry } from "./registry/model-registry.js";
import { createJobRelay } from "./relay/job-relay.js";
import { createSettlement, type Settlement } from "./settlement/settlement.js";
import { createVerification } from "./verification/verification.js";

export interface GatewayPaths {
  /** Holds gateway.db, gateway-key.json and admin-token. */
  dataDir: string;
  /** The optional gateway.json. */
  configFile: string;
}

export interface StartGatewayParameters extends GatewayPaths {
  logger: Logger;
  host?: string;
  port?: number;
  /** Config overrides on top of the file (e.g. from `gbt up`). */
  config?: (config: GatewayConfig) => GatewayConfig;
  /** Encrypts (or unlocks) the gateway key. */
  passphrase?: string;
  /** Overrides the admin token file (e.g. GBT_GATEWAY_ADMIN_TOKEN). */
  adminToken?: string;
  /** Settlement of the caller's own (gbt up's, on its dev chain); by default one from the config's section. */
  settlement?: Settlement;
}

export interface RunningGateway extends GatewayServer {
  adminToken: string;
  config: GatewayConfig;
}

export async function startGateway(parameters: StartGatewayParameters): Promise<RunningGateway> {
  const loaded = await loadGatewayConfig(parameters.configFile);
  const config = parameters.config ? parameters.config(loaded) : loaded;
  const secrets = await ensureGatewaySecrets(parameters.dataDir, {
    ...(parameters.passphrase !== undefined ? { passphrase: parameters.passphrase } : {}),
    ...(parameters.adminToken !== undefined ? { adminToken: parameters.adminToken } : {}),
  });
  const server = await startGatewayServer({
    config,
    dataDir: parameters.dataDir,
    account: secrets.account,
    signDigest: digestSignerNative(secrets.privateKey),
    adminToken: secrets.adminToken,
    logger: parameters.logger,
    ...(parameters.host !== undefined ? { host: parameters.host } : {}),
    ...(parameters.port !== undefined ? { port: parameters.port } : {}),
    // Every feature of a served gateway, composed here: the registry and the relay always on,
    // verification too (its background checks follow `verification.enabled`), settlement when
    // the config has a chain or the caller brought its own (gbt up).
    registry: createModelRegistry(),
    relay: createJobRelay({ jobsPerMinute: config.relay.jobsPerMinute }),
    verification: createVerification(),
    ...(parameters.settlement
      ? { settlement: parameters.settlement }
      : config.settlement
        ? { settlement: createSettlement() }
        : {}),
  });
  return Object.assign(server, { adminToken: secrets.adminToken, config });
}

/** Runs `fn` on the gateway's account store, opening and closing its database. */
export function withGatewayAccounts<T>(dataDir: string, fn: (accounts: AccountStore) => T): T {
  return withGatewayDatabase(dataDir, (db) => fn(new Accounts(db)));
}

/** Creates an account (5.00 credits) and its first API key. */
export function createGatewayAccount(
  dataDir: string,
  name: string,
  keyName = "default",
): { account: AccountInfo; key: CreatedApiKey } {
  return withGatewayAccounts(dataDir, (accounts) => {
    const account = accounts.createAccount({ name });
    return { account, key: accounts.createApiKey(account.id, keyName) };
  });
}
