/**
 * The gateway's HTTP server on node:http. Consumer API: `POST /v1/chat/completions`,
 * `GET /v1/models` (API key). Node link: `GET /v1/gateway/info`, `POST /v1/gateway/register`,
 * `POST /v1/gateway/heartbeat` (signed objects). Admin API (admin token): `GET /v1/gateway/nodes`,
 * `GET|POST /v1/gateway/accounts`, `POST /v1/gateway/accounts/:id/keys`,
 * `GET /v1/gateway/ledger/check`. Operability: `GET /healthz`, `GET /metrics`.
 * Every error is an OpenAI-style body; every response carries `x-gbt-gateway-ms`.
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  HttpError,
  type HttpError as HttpErrorType,
  readBody,
  sendError,
  sendJson,
  toHttpError,
} from "@gbt/protocol";
import type { Logger } from "pino";
import { bytesToHex, type PrivateKeyAccount } from "viem";
import { AccountStore } from "../auth/accounts.js";
import { bearerToken } from "../auth/bearer-token.js";
import { CreditHolds } from "../billing/credit-holds.js";
import { Ledger } from "../billing/ledger.js";
import { ReceiptSettler } from "../billing/receipt-settler.js";
import { SettlementQueue } from "../billing/settlement-queue.js";
import type { GatewayConfig } from "../gateway-config.js";
import { consumerAccount, type GatewayDatabase, openGatewayDatabase } from "../gateway-database.js";
import { createGatewayMetrics, type GatewayMetrics } from "../gateway-metrics.js";
import { InstancePool } from "../pool/instance-pool.js";
import { NodeRegistrar } from "../pool/node-registrar.js";
import type { RequestTrust } from "../proxy/admission.js";
import { createChatProxy } from "../proxy/chat-proxy.js";
import type { GatewayExtension, GatewayExtensionInstance, GatewayRequest } from "./gateway-extension.js";

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
  maxBodyBytes?: number;
  /** Features plugged in beside routing and billing (registry, settlement, job relay…). */
  extensions?: readonly GatewayExtension[];
  /** Trust tiers, minimum-tier routing and redundant sampling (the verification extension's `trust`). */
  trust?: RequestTrust;
}

export interface GatewayServer {
  readonly url: string;
  readonly address: `0x${string}`;
  /** Every serving instance: routing state and link. */
  readonly pool: InstancePool;
  readonly accounts: AccountStore;
  readonly ledger: Ledger;
  readonly metrics: GatewayMetrics;
  readonly db: GatewayDatabase;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  close(deadlineMs?: number): Promise<void>;
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new HttpError("invalid_json", "The request body is not valid JSON.");
  }
}

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
  const queue = new SettlementQueue(ledger, {
    reservations,
    onError: (error, settlement) => {
      metrics.settlementErrors.inc();
      logger.error({ err: error, requestId: settlement.requestId }, "settlement not written");
    },
  });
  const DAY_MS = 86_400_000;
  const pool = new InstancePool(
    {
      heartbeatIntervalMs: config.routing.heartbeatIntervalMs,
      missedHeartbeats: config.routing.missedHeartbeats,
      minTokPerSec: config.routing.minTokPerSec,
      rampUp: { rampMs: config.routing.rampUpDays * DAY_MS, startFactor: config.routing.rampUpStartFactor },
      ...(options.random ? { random: options.random } : {}),
    },
    now,
  );
  const registrar = new NodeRegistrar({
    pool,
    account,
    chainId: config.chainId,
    heartbeatIntervalMs: config.routing.heartbeatIntervalMs,
    skewSeconds: config.skewSeconds,
    logger,
    now,
  });
  const settler = new ReceiptSettler({
    config,
    account,
    ...(options.signDigest ? { signDigest: options.signDigest } : {}),
    pool,
    queue,
    metrics,
    logger,
    now,
    ...(options.trust ? { payoutFactor: (id: string) => options.trust?.payoutFactor(id) ?? 1 } : {}),
  });
  const chat = createChatProxy({
    config,
    accounts,
    reservations,
    pool,
    settler,
    metrics,
    logger,
    maxBodyBytes,
    ...(options.trust ? { trust: options.trust } : {}),
  });
  const extensions: GatewayExtensionInstance[] = [];
  const closeExtensions = async () => {
    for (const extension of extensions.splice(0).reverse()) await extension.close?.();
  };
  try {
    for (const extension of options.extensions ?? []) {
      extensions.push(
        await extension.start({
          config,
          account,
          signDigest: options.signDigest ?? ((digest) => account.sign({ hash: bytesToHex(digest) })),
          db,
          ledger,
          accounts,
          pool,
          logger: logger.child({ extension: extension.name }),
          now,
          settled: () => settler.idle(),
        }),
      );
    }
  } catch (error) {
    await closeExtensions();
    queue.close();
    db.close();
    throw error;
  }
  const adminTokenBuffer = Buffer.from(options.adminToken);
  let inFlight = 0;
  let draining = false;

  const requireAdmin = (req: IncomingMessage) => {
    const token = bearerToken(req.headers.authorization);
    const given = Buffer.from(token ?? "");
    if (given.length !== adminTokenBuffer.length || !timingSafeEqual(given, adminTokenBuffer)) {
      throw new HttpError(
        "invalid_admin_token",
        "This route needs the gateway's admin token (Authorization: Bearer <admin token>).",
        null,
        { "www-authenticate": "Bearer" },
      );
    }
  };

  const requireConsumer = (req: IncomingMessage) => {
    const key = bearerToken(req.headers.authorization);
    const authenticated = key === undefined ? null : accounts.authenticate(key);
    if (authenticated === null) {
      throw new HttpError("invalid_api_key", "Missing or invalid API key.", null, {
        "www-authenticate": "Bearer",
      });
    }
    return authenticated;
  };

  async function route(req: IncomingMessage, res: ServerResponse, started: number): Promise<string> {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    const method = req.method ?? "GET";
    if (path === "/v1/chat/completions") {
      if (method !== "POST") throw methodNotAllowed("POST");
      if (draining)
        throw new HttpError("shutting_down", "The gateway is shutting down.", null, {
          "retry-after": "5",
        });
      inFlight += 1;
      metrics.inFlight.set(inFlight);
      try {
        await chat.handle(req, res, started);
      } finally {
        inFlight -= 1;
        metrics.inFlight.set(inFlight);
      }
      return "chat";
    }
    if (path === "/v1/models" && method === "GET") {
      requireConsumer(req);
      sendJson(res, 200, {
        object: "list",
        data: pool.activeModels().map((id) => ({ id, object: "model", created: 0, owned_by: "gbt" })),
      });
      return "models";
    }
    if (path === GATEWAY_INFO_PATH && method === "GET") {
      sendJson(res, 200, registrar.info());
      return "info";
    }
    if (path === GATEWAY_REGISTER_PATH && method === "POST") {
      sendJson(res, 200, await registrar.register(await readJson(req, 1024 * 1024)));
      return "register";
    }
    if (path === GATEWAY_HEARTBEAT_PATH && method === "POST") {
      try {
        await registrar.heartbeat(await readJson(req, 256 * 1024));
      } catch (error) {
        if (error instanceof Error && (error as { code?: string }).code === "NOT_FOUND") {
          throw new HttpError("unknown_instance", error.message);
        }
        throw error;
      }
      sendJson(res, 200, { ok: true });
      return "heartbeat";
    }
    if (path === "/healthz" && method === "GET") {
      sendJson(res, draining ? 503 : 200, {
        status: draining ? "draining" : "ok",
        address: account.address,
        chainId: config.chainId,
        instances: pool.size,
        models: pool.activeModels(),
        inFlight,
      });
      return "healthz";
    }
    if (path === "/metrics" && method === "GET") {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(text);
      return "metrics";
    }
    if (extensions.length > 0) {
      const request: GatewayRequest = {
        req,
        res,
        path,
        method,
        query: new URLSearchParams(query < 0 ? "" : url.slice(query + 1)),
        readJson: (limit) => readJson(req, limit),
        requireAdmin: () => requireAdmin(req),
        requireConsumer: () => ({ accountId: requireConsumer(req).accountId }),
      };
      for (const extension of extensions) {
        const name = await extension.handle(request);
        if (name !== undefined) return name;
      }
    }
    if (path.startsWith("/v1/gateway/")) {
      requireAdmin(req);
      return adminRoute(req, res, path, method);
    }
    throw new HttpError("not_found", `No route ${method} ${path}.`);
  }

  async function adminRoute(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
  ): Promise<string> {
    if (path === "/v1/gateway/nodes" && method === "GET") {
      const view = pool.live().map(({ backend, modelDigests, lastHealth, ...instance }) => {
        const trust = (options.trust?.nodeView(instance.id) ?? null) as {
          tier?: string;
          reputation?: number;
          evidence?: string[];
        } | null;
        return {
          ...instance,
          // Without verification nothing is measured: every node is community, reputation unknown.
          tier: trust?.tier ?? "community",
          reputation: trust?.reputation ?? null,
          evidence: trust?.evidence ?? [],
          trust,
          backend,
          modelDigests,
          lastHealth,
        };
      });
      sendJson(res, 200, { object: "list", data: view });
      return "admin_nodes";
    }
    if (path === "/v1/gateway/accounts" && method === "GET") {
      sendJson(res, 200, { object: "list", data: accounts.listAccounts() });
      return "admin_accounts";
    }
    if (path === "/v1/gateway/accounts" && method === "POST") {
      const body = (await readJson(req, 64 * 1024)) as { name?: unknown; keyName?: unknown } | null;
      const name = typeof body?.name === "string" ? body.name : "";
      const created = accounts.createAccount({ name });
      const key = accounts.createApiKey(
        created.id,
        typeof body?.keyName === "string" ? body.keyName : "default",
      );
      sendJson(res, 201, { account: created, key });
      return "admin_accounts";
    }
    const keys = /^\/v1\/gateway\/accounts\/([^/]+)\/keys$/.exec(path);
    if (keys && method === "POST") {
      const body = (await readJson(req, 64 * 1024)) as { name?: unknown } | null;
      const key = accounts.createApiKey(
        decodeURIComponent(keys[1] as string),
        typeof body?.name === "string" ? body.name : "default",
      );
      sendJson(res, 201, key);
      return "admin_keys";
    }
    if (path === "/v1/gateway/ledger/check" && method === "GET") {
      await settler.idle();
      const report = ledger.checkInvariants();
      sendJson(res, report.ok ? 200 : 500, report);
      return "admin_ledger";
    }
    throw new HttpError("not_found", `No route ${method} ${path}.`);
  }

  const server: Server = createServer((req, res) => {
    const started = performance.now();
    route(req, res, started)
      .then((name) => metrics.requests.inc({ route: name, status: String(res.statusCode) }))
      .catch((error: unknown) => {
        const http: HttpErrorType = toHttpError(error, "gateway", "gateway");
        if (http.status >= 500 && !(error instanceof HttpError))
          logger.error({ err: error, path: req.url }, "request failed");
        if (!res.headersSent) http.headers["x-gbt-gateway-ms"] = (performance.now() - started).toFixed(3);
        sendError(res, http);
        metrics.requests.inc({ route: "error", status: String(http.status) });
      });
  });
  server.keepAliveTimeout = 65_000;

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
    await closeExtensions();
    queue.close();
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
    ledger,
    metrics,
    db,
    settled: () => settler.idle(),
    async close(deadlineMs = 10_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const until = Date.now() + deadlineMs;
      while (inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      server.closeAllConnections();
      await closed;
      await settler.idle();
      await closeExtensions();
      queue.close();
      db.close();
    },
  };
}

function methodNotAllowed(allow: string): HttpError {
  return new HttpError("method_not_allowed", `Use ${allow}.`, null, { allow });
}
