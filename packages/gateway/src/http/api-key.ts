/**
 * `apiKey()`: the consumer routes' gate. The request's bearer token must be a live API key; the
 * account and key behind it become the `principal` of the handlers after it. Otherwise 401
 * `invalid_api_key` with `www-authenticate: Bearer`.
 */
import { bearerToken, httpError } from "@gbt/protocol";
import type { MiddlewareHandler } from "hono";
import type { AccountStore } from "../auth/accounts.js";
import type { GatewayEnv } from "./gateway-env.js";

export function apiKey(accounts: Pick<AccountStore, "authenticate">): MiddlewareHandler<GatewayEnv> {
  return async (c, next) => {
    const key = bearerToken(c.req.header("authorization"));
    const principal = key === undefined ? null : accounts.authenticate(key);
    if (principal === null) {
      throw httpError("invalid_api_key", "Missing or invalid API key.", {
        headers: { "www-authenticate": "Bearer" },
      });
    }
    c.set("principal", principal);
    await next();
  };
}
