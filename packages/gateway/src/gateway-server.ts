/**
 * The gateway's HTTP server on node:http, and where its parts are composed: the database, the
 * pool, billing (holds, receipts, ledger), the hot path, and the features given (model registry,
 * job relay, verification, settlement), each started with the narrow ports it declares.
 * The pooled routes (`POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
 * `/v1/responses`) are dispatched first, to the raw hot path (proxy/); every other route goes to
 * the Hono app (http/): the consumer's `GET /v1/models`, the node link, operability, the features'
 * routes, then the admin API. Every error is an OpenAI-style body from @gbt/protocol's table; every
 * response carries `x-gbt-gateway-ms` and the gateway's `x-request-id` (on a pooled request, the
 * id its receipt carries), and echoes a consumer's `x-client-request-id`.
 *
 * Shutdown order: stop taking requests (chat answers 503 `shutting_down`, `/healthz` 503), wait
 * for the chat completions in flight up to the deadline, cut what is left, settle what was
 * served, close the features (newest first), flush the settlement queue, close the database.
 * At start, what the settlement journal still holds (served before a crash) is settled before
 * the server listens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gatewayPaths, guardServer, HttpError, isGbtError, sendError, toHttpError } from "@gbt/protocol";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import type { Logger } from "pino";
import type { PrivateKeyAccount } from "viem";
import { AccountStore } from "./auth/accounts.js";
import { CreditHolds } from "./billing/credit-holds.js";
import { Ledger } from "./billing/ledger.js";
import { ReceiptSettler } from "./billing/receipt-settler.js";
import { SettlementJournal, settlementJournalDir } from "./billing/settlement-journal.js";
import { SettlementQueue } from "./billing/settlement-queue.js";
import type { GatewayConfig } from "./gateway-config.js";
import { consumerAccount, type GatewayDatabase, openGatewayDatabase } from "./gateway-database.js";
import type { GatewayFeature } from "./gateway-feature.js";
import { createGatewayMetrics, type GatewayMetrics } from "./gateway-metrics.js";
import { apiKey } from "./http/api-key.js";
import { methodNotAllowed } from "./http/errors.js";
import { createGatewayApp } from "./http/gateway-app.js";
import type { GatewayEnv } from "./http/gateway-env.js";
import { requireAdmin } from "./http/require-admin.js";
import { adminRoutes } from "./http/routes/admin-routes.js";
import { consumerRoutes } from "./http/routes/consumer-routes.js";
import { earningsRoutes } from "./http/routes/earnings-routes.js";
import { nodeLinkRoutes } from "./http/routes/node-link-routes.js";
import { operabilityRoutes } from "./http/routes/operability-routes.js";
import { limitRoutes } from "./limits/limit-routes.js";
import { LimitStore } from "./limits/limit-store.js";
import { perIpLimit } from "./limits/per-ip-limit.js";
import { RateLimiter } from "./limits/rate-limiter.js";
import { attachLinkServer } from "./link/link-server.js";
import { InstancePool } from "./pool/instance-pool.js";
import { NodeRegistrar } from "./pool/node-registrar.js";
import { NodeTransport, type ResolveHost } from "./pool/node-transport.js";
import { stakeGateFromConfig } from "./pool/stake-gate.js";
import { createPoolProxy } from "./proxy/pool-proxy.js";
import { type ProxyRoute, proxyRoutes } from "./proxy/proxy-routes.js";
import { newRequestId } from "./proxy/request-id.js";
import type { ModelRegistry } from "./registry/model-registry.js";
import type { JobRelay } from "./relay/job-relay.js";
import type { Settlement } from "./settlement/settlement.js";
import type { Verification, VerificationFeature } from "./verification/verification.js";

export interface GatewayServerOptions {
  config: GatewayConfig;
  /** Holds gateway.db; the CLI passes the gateway's data dir. */
  dataDir: string;
  account: PrivateKeyAccount;
  /** Signs a digest with the gateway key (default: the account's, in JS; the service passes a native one). */
  signDigest?: (digest: Uint8Array) => `0x${string}` | Promise<`0x${string}`>;
  adminToken: string;
  logger: Logger;
  /** Overrides config.host / config.port. */
  host?: string;
  port?: number;
  now?: () => number;
  random?: () => number;
  /** Resolves node host names (default: the system resolver); tests give names without DNS traffic. */
  resolveHost?: ResolveHost;
  maxBodyBytes?: number;
  /** The model registry (`createModelRegistry()`): signed manifests, the approved-only policy. */
  registry?: ModelRegistry;
  /** The job relay (`createJobRelay()`): signed jobs carried to a node's agent. */
  relay?: JobRelay;
  /** Verification (`createVerification()`): challenges, evidence, trust tiers, sampling, payout factors. */
  verification?: Verification;
  /** Settlement (`createSettlement()`): epoch roots of the nodes' cumulative earnings on chain. */
  settlement?: Settlement;
}

export interface GatewayServer {
  readonly url: string;
  readonly address: `0x${string}`;
  /** Every serving instance: routing state and link. */
  readonly pool: InstancePool;
  readonly accounts: AccountStore;
  /** Credits held for requests in flight, per account (zero once every request has ended). */
  readonly holds: Pick<CreditHolds, "heldMicro">;
  readonly ledger: Ledger;
  readonly metrics: GatewayMetrics;
  readonly db: GatewayDatabase;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  close(deadlineMs?: number): Promise<void>;
}

const DAY_MS = 86_400_000;

/** The pooled routes other than chat (looked up only when a path is not chat's), by gateway path. */
const pooledRoutes = new Map<string, ProxyRoute>([
  [gatewayPaths.completions, proxyRoutes.completions],
  [gatewayPaths.embeddings, proxyRoutes.embeddings],
  [gatewayPaths.responses, proxyRoutes.responses],
]);

export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const { config, logger, account } = options;
  const now = options.now ?? Date.now;
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const metrics = createGatewayMetrics();
  const db = openGatewayDatabase(join(options.dataDir, "gateway.db"));
  // A key revoked from the CLI (another process) stops working here within 10 s.
  const accounts = new AccountStore(db, now, { positiveTtlMs: 10_000 });
  const ledger = new Ledger(db, now);
  const reservations = new CreditHolds((accountId) => ledger.balanceMicro(consumerAccount(accountId)));
  // The door's limits per key and account (gateway.json, overridden through the admin API).
  const limits = new LimitStore(db, config.limits, (accountId) => reservations.heldMicro(accountId));
  const limiter = new RateLimiter(limits, limits, now);
  const perIp = perIpLimit(config.server.unauthenticatedPerIpPerMinute, now);
  const unkeyedLimit = new Hono<GatewayEnv>()
    .use(gatewayPaths.register, perIp)
    .use(gatewayPaths.heartbeat, perIp)
    .use("/v1/nodes/*", perIp);
  const journal = new SettlementJournal(db, { dir: settlementJournalDir(options.dataDir), now });
  const queue = new SettlementQueue(ledger, {
    reservations,
    journal,
    onError: (error, settlement, attempts) => {
      const requestId = settlement.requestId;
      // A journalled request whose transaction landed just before a crash: found, not billed twice.
      if (isGbtError(error) && error.code === "ALREADY_EXISTS")
        return logger.info({ requestId }, "journalled request already in the ledger; dropped");
      metrics.settlementErrors.inc();
      logger.error({ err: error, requestId, attempts }, "settlement given up: see gbt gateway dead-letters");
    },
    onRetry: (error, settlement, attempt, delayMs) =>
      logger.warn(
        { err: error, requestId: settlement.requestId, attempt, delayMs },
        "settlement failed; retrying",
      ),
  });
  const pool = new InstancePool(
    {
      heartbeatIntervalMs: config.routing.heartbeatIntervalMs,
      missedHeartbeats: config.routing.missedHeartbeats,
      minTokPerSec: config.routing.minTokPerSec,
      panicMode: config.routing.panicMode,
      rampUp: { rampMs: config.routing.rampUpDays * DAY_MS, startFactor: config.routing.rampUpStartFactor },
      ...(options.random ? { random: options.random } : {}),
    },
    now,
  );
  // One policy for every address a node gives (see pool/node-transport.ts).
  const transport = new NodeTransport({
    allowPrivate: config.allowPrivateNodes,
    ...(options.resolveHost ? { resolve: options.resolveHost } : {}),
  });
  // routing.minStakeGbt > 0: a node registers only with that much staked on chain (read at registration).
  const stakeGate = stakeGateFromConfig(config, logger);
  const registrar = new NodeRegistrar({
    pool,
    transport,
    ...(stakeGate ? { stakeGate } : {}),
    account,
    chainId: config.chainId,
    heartbeatIntervalMs: config.routing.heartbeatIntervalMs,
    skewSeconds: config.skewSeconds,
    maxCapacity: config.routing.maxCapacity,
    logger,
    now,
  });
  const admin = requireAdmin(options.adminToken);
  const consumer = apiKey(accounts);
  const settled = () => settler.idle();
  const features: GatewayFeature[] = [];
  const closeFeatures = async () => {
    for (const feature of features.splice(0).reverse()) await feature.close?.();
  };
  let verification: VerificationFeature | undefined;
  try {
    const base = { admin, logger, now };
    const scoped = (name: string) => ({ ...base, logger: logger.child({ feature: name }) });
    if (options.registry) {
      features.push(
        await options.registry.start({
          ...scoped(options.registry.name),
          registry: config.registry,
          chainId: config.chainId,
          skewSeconds: config.skewSeconds,
          db,
          pool,
        }),
      );
    }
    if (options.relay) {
      features.push(
        await options.relay.start({
          ...scoped(options.relay.name),
          chainId: config.chainId,
          skewSeconds: config.skewSeconds,
          gateway: account.address,
          pool,
        }),
      );
    }
    if (options.verification) {
      verification = await options.verification.start({
        ...scoped(options.verification.name),
        config: config.verification,
        chainId: config.chainId,
        skewSeconds: config.skewSeconds,
        gateway: account.address,
        db,
        usage: ledger,
        pool,
        settled,
      });
      features.push(verification);
    }
    if (options.settlement) {
      features.push(
        await options.settlement.start({
          ...scoped(options.settlement.name),
          settlement: config.settlement,
          account,
          db,
          ledger,
          settled,
        }),
      );
    }
  } catch (error) {
    await closeFeatures();
    queue.close();
    journal.close();
    db.close();
    throw error;
  }
  // Verification is wired once: its hooks go where they are used, bound to the started feature.
  const settler = new ReceiptSettler({
    config,
    account,
    ...(options.signDigest ? { signDigest: options.signDigest } : {}),
    pool,
    queue,
    journal,
    metrics,
    logger,
    now,
    ...(verification ? { payoutFactor: verification.payoutFactor } : {}),
  });
  const replayed = await settler.replay();
  if (replayed > 0) logger.info({ replayed }, "settled the requests journalled before the last stop");
  const proxy = createPoolProxy({
    config,
    accounts,
    reservations,
    pool,
    settler,
    metrics,
    logger,
    maxBodyBytes,
    limiter,
    ...(verification ? { admit: verification.admit, observe: verification.observe } : {}),
  });

  let inFlight = 0;
  let draining = false;
  const app = createGatewayApp({
    metrics,
    logger,
    routes: [
      // The routes that need no API key, limited per address before any signature work.
      unkeyedLimit,
      consumerRoutes({ pool, apiKey: consumer }),
      nodeLinkRoutes(registrar),
      operabilityRoutes({
        address: account.address,
        chainId: config.chainId,
        pool,
        metrics,
        state: () => ({ draining, inFlight }),
      }),
      // The section settlement runs on (gbt up hands it to the feature, not through the config).
      earningsRoutes({
        db,
        account,
        chainId: config.chainId,
        settlement: options.settlement?.section?.() ?? config.settlement,
        now,
      }),
      ...features.flatMap((feature) => (feature.routes ? [feature.routes] : [])),
      limitRoutes(admin, limits),
      adminRoutes({
        admin,
        pool,
        accounts,
        ledger,
        settled,
        ...(verification ? { nodeTrust: verification.nodeTrust } : {}),
      }),
    ],
  });
  // The gateway is embedded (gbt up, tests): it leaves the process's global Request and Response alone.
  const everythingElse = getRequestListener(app.fetch, { overrideGlobalObjects: false });

  /** The hot path, on node:http: only the pooled routes skip the Hono app. */
  async function servePooled(
    route: ProxyRoute,
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    requestId: string,
  ): Promise<void> {
    if (req.method !== "POST") throw methodNotAllowed("POST");
    if (draining) {
      throw new HttpError("shutting_down", "The gateway is shutting down.", null, { "retry-after": "5" });
    }
    inFlight += 1;
    metrics.inFlight.set(inFlight);
    try {
      await proxy.handle(route, req, res, started, requestId);
    } finally {
      inFlight -= 1;
      metrics.inFlight.set(inFlight);
    }
  }

  const server: Server = createServer((req, res) => {
    const started = performance.now();
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const route = path === gatewayPaths.chatCompletions ? proxyRoutes.chat : pooledRoutes.get(path);
    if (route === undefined) {
      void everythingElse(req, res);
      return;
    }
    const requestId = newRequestId();
    servePooled(route, req, res, started, requestId)
      .then(() => metrics.requests.inc({ route: route.name, status: String(res.statusCode) }))
      .catch((error: unknown) => {
        const http = toHttpError(error, "gateway", "gateway");
        if (http.status >= 500 && !(error instanceof HttpError))
          logger.error({ err: error, path: req.url, requestId }, "request failed");
        if (!res.headersSent) {
          http.headers["x-gbt-gateway-ms"] = (performance.now() - started).toFixed(3);
          http.headers["x-request-id"] = requestId;
        }
        sendError(res, http);
        metrics.requests.inc({ route: "error", status: String(http.status) });
      });
  });
  // Timeouts and connection caps at the socket (gateway.json `server`): a slowloris or a pile of idle
  // sockets from one address cannot hold the gateway from everyone else.
  guardServer(server, config.server);
  // Nodes with no public address dial in (GET /v1/gateway/link) and are reached over that connection.
  const links = attachLinkServer(server, {
    registrar,
    pool,
    account,
    chainId: config.chainId,
    logger: logger.child({ component: "link" }),
    now,
    accepting: () => !draining,
  });

  const host = options.host ?? config.host;
  const port = options.port ?? config.port;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    await closeFeatures();
    queue.close();
    journal.close();
    db.close();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  logger.info({ url, address: account.address, chainId: config.chainId }, "gateway listening");

  return {
    url,
    address: account.address,
    pool,
    accounts,
    holds: reservations,
    ledger,
    metrics,
    db,
    settled,
    async close(deadlineMs = 10_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const until = Date.now() + deadlineMs;
      while (inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await links.close(500);
      server.closeAllConnections();
      await closed;
      await settler.idle();
      await closeFeatures();
      transport.close();
      queue.close();
      journal.close();
      db.close();
    },
  };
}
