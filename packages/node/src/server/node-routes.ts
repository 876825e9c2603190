/**
 * Every route of the node server but the hot path, on Hono: `/healthz` (open to all), the agent's
 * routes from @gbt/agent (no API key: a signed job is its own authentication; served on a loopback
 * listener unless `agentOnAnyHost`, and on any listener to the linked gateway's token, which relays
 * owners' jobs but cannot forge or alter them), then the API key for the rest: `/v1/models` and
 * `/metrics`; in setup mode (an unclaimed node) the claim routes, to loopback peers only. One `onError` answers every failure with protocol's error table, and each request is
 * counted under its route's name (`error` when it failed), as the raw chat path counts its own.
 */
import { randomBytes } from "node:crypto";
import { type AgentEndpoint, agentRoutes } from "@gbt/agent";
import {
  agentPaths,
  assertDecodablePath,
  errorBody,
  HttpError,
  type NodeHealth,
  type NodeModelList,
  nodePaths,
  toHttpError,
} from "@gbt/protocol";
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { Backend } from "../backends/types.js";
import type { SetupController } from "../claim/setup-controller.js";
import { registerSetupRoutes, setupPaths } from "../claim/setup-routes.js";
import { apiKey, type NodeAuth } from "./node-auth.js";
import type { NodeMetrics } from "./node-metrics.js";

/** The metric label of each route; a request that failed counts as `error`. */
type RouteName =
  | "healthz"
  | "models"
  | "metrics"
  | "agent_submit"
  | "agent_status"
  | "agent_allowlist"
  | "setup_page"
  | "setup_info"
  | "setup_claim";
type NodeEnv = { Variables: { route: RouteName } };

export interface NodeRoutesOptions {
  backend: Backend;
  capacity: number;
  metrics: NodeMetrics;
  auth: NodeAuth;
  logger: Logger;
  /** The node agent; absent, `/agent/*` answers 404. */
  agent?: AgentEndpoint | undefined;
  /** Whether the listener may serve the agent to any caller (loopback, or `agentOnAnyHost`). */
  agentServed: boolean;
  /** Chat completions being generated now. */
  inFlight: () => number;
  /** Whether the node takes no new work (drained or shutting down). */
  draining: () => boolean;
  /**
   * Setup mode of an unclaimed node (claim/setup-controller.ts): when given, `/setup`,
   * `/setup/info` and `POST /setup/claim` are served (no API key; loopback peers only, or the
   * private LAN when the controller allows it). Absent, those paths are like any unknown one.
   */
  setup?: SetupController | undefined;
}

/** The node's Hono app. */
export function nodeRoutes(options: NodeRoutesOptions): Hono<NodeEnv> {
  const { backend, metrics, logger, agent } = options;
  const app = new Hono<NodeEnv>();
  app.use(async (c, next) => {
    await next();
    const route = c.error === undefined ? (c.get("route") ?? "error") : "error";
    metrics.requests.inc({ route, status: String(c.res.status) });
  });

  // Every answer names itself, as OpenAI's do (errors included).
  app.use(async (c, next) => {
    await next();
    if (!c.res.headers.has("x-request-id"))
      c.res.headers.set("x-request-id", `req-${randomBytes(9).toString("base64url")}`);
  });

  // Every percent-decoding failure is a 400, whichever route the path would have reached.
  app.use(async (c, next) => {
    assertDecodablePath(new URL(c.req.url).pathname);
    await next();
  });

  app.get(nodePaths.health, async (c) => {
    c.set("route", "healthz");
    const health = await backend.health();
    const draining = options.draining();
    const ok = health.ok && !draining;
    return c.json(
      {
        status: ok ? "ok" : draining ? "draining" : "backend_unhealthy",
        draining,
        backend: { kind: backend.kind, location: backend.location, ...health },
        inFlight: options.inFlight(),
        capacity: options.capacity,
      } satisfies NodeHealth,
      ok ? 200 : 503,
    );
  });

  // The agent's routes: only to callers the listener may serve them to, never behind an API key.
  app.use(`${agentPaths.prefix}/*`, async (c, next) => {
    if (!agent || !(options.agentServed || options.auth.isPooled(c.req.header("authorization")))) {
      throw noRoute(c);
    }
    await next();
  });
  if (agent) {
    app.use(agentPaths.jobs, label("agent_submit"));
    app.use(agentPaths.jobPattern, label("agent_status"));
    app.use(agentPaths.allowlist, label("agent_allowlist"));
    app.route("/", agentRoutes(agent));
  }
  app.all(agentPaths.prefix, (c) => {
    throw noRoute(c);
  });
  app.all(`${agentPaths.prefix}/*`, (c) => {
    throw noRoute(c);
  });

  // Setup mode: before the API key (the peer check is its gate), never on a tunnelled request.
  if (options.setup) {
    app.use(setupPaths.page, label("setup_page"));
    app.use(setupPaths.info, label("setup_info"));
    app.use(setupPaths.claim, label("setup_claim"));
    registerSetupRoutes(app, options.setup);
  }

  app.use(apiKey(options.auth));
  app.get(nodePaths.models, async (c) => {
    c.set("route", "models");
    const models = await backend.listModels();
    return c.json({
      object: "list",
      data: models.map((model) => ({
        id: model.id,
        object: "model",
        created: 0,
        owned_by: "gbt",
        ...(model.digest ? { digest: model.digest } : {}),
        ...(model.capabilities ? { capabilities: model.capabilities } : {}),
      })),
    } satisfies NodeModelList);
  });
  app.get(nodePaths.metrics, async (c) => {
    c.set("route", "metrics");
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { "content-type": metrics.registry.contentType });
  });

  app.notFound((c) => answerError(noRoute(c), c));
  app.onError((error, c) => answerError(error, c));

  /** The one answer to a failure: protocol's status, headers and OpenAI error body. */
  function answerError(error: unknown, c: Context) {
    const http = toHttpError(error, "node", "node server");
    if (http.status >= 500 && !(error instanceof HttpError)) {
      logger.error({ err: error, path: c.req.path }, "request failed");
    }
    return c.json(errorBody(http), http.status as ContentfulStatusCode, http.headers);
  }
  return app;
}

/** Middleware naming the route a request reached, for its metric. */
function label(route: RouteName) {
  return async (c: Context<NodeEnv>, next: () => Promise<void>) => {
    c.set("route", route);
    await next();
  };
}

function noRoute(c: Context): HttpError {
  return new HttpError("not_found", `No route ${c.req.method} ${c.req.path}.`);
}
