/**
 * `gbt gateway serve` as a service: config file → secrets → server. Also the offline admin
 * actions the CLI runs against the gateway's database (accounts and keys), which a running
 * gateway picks up within a second.
 */
import { join } from "node:path";
import { digestSignerNative } from "@gbt/protocol";
import type { Logger } from "pino";
import {
  type AccountInfo,
  type AccountStore,
  AccountStore as Accounts,
  type CreatedApiKey,
} from "./auth/accounts.js";
import { type GatewayConfig, loadGatewayConfig } from "./gateway-config.js";
import { openGatewayDatabase } from "./gateway-database.js";
import { ensureGatewaySecrets } from "./gateway-identity.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { createModelRegistryExtension } from "./registry/registry-extension.js";
import { jobRelay } from "./relay/job-relay.js";
import type { GatewayExtension } from "./server/gateway-extension.js";
import { createSettlementExtension } from "./settlement/settlement-extension.js";
import { createVerificationExtension } from "./verification/verification-extension.js";

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
  /** Features beside routing and billing (see gateway-extension.ts), after the model registry (always on). */
  extensions?: readonly GatewayExtension[];
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
  // Verification is always on (its background checks follow `verification.enabled`).
  const verification = createVerificationExtension();
  const server = await startGatewayServer({
    config,
    dataDir: parameters.dataDir,
    account: secrets.account,
    signDigest: digestSignerNative(secrets.privateKey),
    adminToken: secrets.adminToken,
    logger: parameters.logger,
    ...(parameters.host !== undefined ? { host: parameters.host } : {}),
    ...(parameters.port !== undefined ? { port: parameters.port } : {}),
    trust: verification.trust,
    extensions: [
      createModelRegistryExtension(),
      jobRelay(),
      verification,
      ...(parameters.extensions ?? []),
      // Settlement runs when the config has a chain, unless the caller brought its own (gbt up).
      ...(config.settlement && !parameters.extensions?.some((e) => e.name === "settlement")
        ? [createSettlementExtension()]
        : []),
    ],
  });
  return Object.assign(server, { adminToken: secrets.adminToken, config });
}

/** Runs `fn` on the gateway's account store, opening and closing its database. */
export function withGatewayAccounts<T>(dataDir: string, fn: (accounts: AccountStore) => T): T {
  const db = openGatewayDatabase(join(dataDir, "gateway.db"));
  try {
    return fn(new Accounts(db));
  } finally {
    db.close();
  }
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
