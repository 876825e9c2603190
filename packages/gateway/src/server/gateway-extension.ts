/**
 * Gateway extensions: features beyond routing and billing (the model registry, settlement, the job
 * relay, evidence) plug into the gateway server as extensions. Each one gets the server's shared
 * state once at start and returns its routes (a Hono app the server mounts); the server keeps one
 * error mapping, one request counter and one shutdown order for all of them.
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { PrivateKeyAccount } from "viem";
import type { AccountStore } from "../auth/accounts.js";
import type { Ledger } from "../billing/ledger.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayDatabase } from "../gateway-database.js";
import type { GatewayEnv, GatewayRoutes } from "../http/gateway-env.js";
import type { InstancePool } from "../pool/instance-pool.js";

/** What an extension may use: the gateway's own state, not a copy. */
export interface GatewayExtensionContext {
  config: GatewayConfig;
  account: PrivateKeyAccount;
  signDigest: (digest: Uint8Array) => `0x${string}` | Promise<`0x${string}`>;
  db: GatewayDatabase;
  ledger: Ledger;
  accounts: AccountStore;
  pool: InstancePool;
  logger: Logger;
  now: () => number;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  /** The admin-token gate (401 without it). */
  admin: MiddlewareHandler<GatewayEnv>;
  /** The API-key gate (401 without a live key; the account becomes the `principal`). */
  apiKey: MiddlewareHandler<GatewayEnv>;
}

export interface GatewayExtensionInstance {
  /** Its routes, tried in the order the extensions were given, before the admin API and the 404. */
  routes?: GatewayRoutes;
  /** Stops timers and background work; the database is closed after every extension's close. */
  close?(): Promise<void> | void;
}

export interface GatewayExtension {
  /** Short name, for logs. */
  name: string;
  start(context: GatewayExtensionContext): Promise<GatewayExtensionInstance> | GatewayExtensionInstance;
}
