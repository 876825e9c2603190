/**
 * Gateway extensions: features beyond routing and billing (the model registry, settlement, the job
 * relay, evidence) plug into the gateway server as extensions. Each one gets the server's shared
 * state once at start and answers the routes it owns; the server keeps one error mapping, one
 * request counter and one shutdown order for all of them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { PrivateKeyAccount } from "viem";
import type { AccountStore } from "../auth/accounts.js";
import type { Ledger } from "../billing/ledger.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayDatabase } from "../gateway-database.js";
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
}

/** One request as an extension sees it. */
export interface GatewayRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The URL path without the query string. */
  path: string;
  method: string;
  /** The query string's parameters. */
  query: URLSearchParams;
  /** Parses the JSON body (400 invalid_json, 413 beyond `limitBytes`). */
  readJson(limitBytes: number): Promise<unknown>;
  /** Throws 401 unless the request carries the admin token. */
  requireAdmin(): void;
  /** The consumer account of the request's API key; throws 401 without a valid one. */
  requireConsumer(): { accountId: string };
}

export interface GatewayExtensionInstance {
  /**
   * Answers the request when this extension owns its route and returns the route's name (for
   * metrics); returns undefined to let the next extension or the 404 answer.
   */
  handle(request: GatewayRequest): Promise<string | undefined> | string | undefined;
  /** Stops timers and background work; the database is closed after every extension's close. */
  close?(): Promise<void> | void;
}

export interface GatewayExtension {
  /** Short name, for logs. */
  name: string;
  start(context: GatewayExtensionContext): Promise<GatewayExtensionInstance> | GatewayExtensionInstance;
}
