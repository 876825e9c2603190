/**
 * The gateway's Hono app: every route but `POST /v1/chat/completions` (the hot path stays on raw
 * node:http, see proxy/). Route modules and features are mounted in order, the first that answers
 * wins; one root middleware stamps `x-gbt-gateway-ms` and the gateway's own `x-request-id` on
 * every response (echoing a consumer's `x-client-request-id`) and counts it in the request metrics
 * (by the route's name, or `error`), and one error handler answers every failure.
 */
import { assertDecodablePath } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import type { GatewayMetrics } from "../gateway-metrics.js";
import { CLIENT_REQUEST_ID_HEADER } from "../proxy/pool-proxy.js";
import { newRequestId } from "../proxy/request-id.js";
import { onGatewayError, onGatewayNotFound } from "./errors.js";
import type { GatewayEnv, GatewayRoutes } from "./gateway-env.js";

/** Names the route in the request metrics (`gbt_gateway_requests_total{route=…}`). */
export function named(route: string): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    c.set("route", route);
    await next();
  };
}

export interface GatewayAppOptions {
  metrics: GatewayMetrics;
  logger: Logger;
  /** Mounted in this order; each is tried before the ones after it. */
  routes: readonly GatewayRoutes[];
}

export function createGatewayApp(options: GatewayAppOptions): GatewayRoutes {
  const { metrics } = options;
  const app = new Hono<GatewayEnv>();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const headers = c.res.headers;
    headers.set("x-gbt-gateway-ms", (performance.now() - started).toFixed(3));
    headers.set("x-request-id", newRequestId());
    const clientRequestId = c.req.header(CLIENT_REQUEST_ID_HEADER);
    if (clientRequestId !== undefined && clientRequestId.length <= 512)
      headers.set(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    const route = c.error === undefined ? (c.get("route") ?? "error") : "error";
    metrics.requests.inc({ route, status: String(c.res.status) });
  });
  // Every percent-decoding failure is a 400, whichever route the path would have reached.
  app.use(async (c, next) => {
    assertDecodablePath(new URL(c.req.url).pathname);
    await next();
  });
  for (const routes of options.routes) app.route("/", routes);
  app.notFound(onGatewayNotFound);
  app.onError(onGatewayError(options.logger));
  return app;
}
