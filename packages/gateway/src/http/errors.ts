/**
 * How the gateway's Hono routes fail: one error handler (`onGatewayError`) maps whatever a route
 * throws to its status and OpenAI error body through @gbt/protocol's table (`toHttpError`), under
 * the scope the route declared (`errorScope`: the settlement's chain errors are upstream failures,
 * not the caller's); unknown routes and wrong methods answer from the same table.
 */
import { errorBody, type HttpError, httpError, toHttpError } from "@gbt/protocol";
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import type { Logger } from "pino";
import type { ErrorScope, GatewayEnv } from "./gateway-env.js";

const DEFAULT_SCOPE: ErrorScope = { surface: "gateway", component: "gateway" };

/** Declares how the routes after it map their errors (e.g. `errorScope("chain", "settlement")`). */
export function errorScope(surface: ErrorScope["surface"], component: string): MiddlewareHandler<GatewayEnv> {
  const scope: ErrorScope = { surface, component };
  return async (c, next) => {
    c.set("errorScope", scope);
    await next();
  };
}

/** 405 with the `allow` header: the one answer to a known path asked with the wrong method. */
export function methodNotAllowed(allow: string): HttpError {
  return httpError("method_not_allowed", `Use ${allow}.`, { headers: { allow } });
}

/** The response of an HttpError: its status, OpenAI body and headers. */
export function errorResponse(c: Context, error: HttpError): Response {
  return c.json(errorBody(error), error.status as 400, error.headers);
}

/** The one error handler: anything thrown becomes an OpenAI error body; unexpected 5xx are logged. */
export function onGatewayError(logger: Logger): ErrorHandler<GatewayEnv> {
  return (error, c) => {
    const scope = c.get("errorScope") ?? DEFAULT_SCOPE;
    const http = toHttpError(error, scope.surface, scope.component);
    if (http.status >= 500 && http !== error) {
      logger.error({ err: error, path: c.req.path, component: scope.component }, "request failed");
    }
    return errorResponse(c, http);
  };
}

/** 404 `not_found` naming the method and path as they came. */
export const onGatewayNotFound: NotFoundHandler<GatewayEnv> = (c) =>
  errorResponse(c, httpError("not_found", `No route ${c.req.method} ${rawPath(c.req.url)}.`));

function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", start);
  return query < 0 ? url.slice(start) : url.slice(start, query);
}
