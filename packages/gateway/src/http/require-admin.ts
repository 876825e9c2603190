/**
 * `requireAdmin()`: the admin routes' gate. The request's bearer token must be the gateway's admin
 * token, compared in constant time; otherwise 401 `invalid_admin_token` with
 * `www-authenticate: Bearer`.
 */
import { timingSafeEqual } from "node:crypto";
import { bearerToken, httpError } from "@gbt/protocol";
import type { MiddlewareHandler } from "hono";
import type { GatewayEnv } from "./gateway-env.js";

export function requireAdmin(adminToken: string): MiddlewareHandler<GatewayEnv> {
  const expected = Buffer.from(adminToken);
  return async (c, next) => {
    const given = Buffer.from(bearerToken(c.req.header("authorization")) ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw httpError(
        "invalid_admin_token",
        "This route needs the gateway's admin token (Authorization: Bearer <admin token>).",
        { headers: { "www-authenticate": "Bearer" } },
      );
    }
    await next();
  };
}
