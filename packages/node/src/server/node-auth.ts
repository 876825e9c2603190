/**
 * Who a request to the node is, from its `Authorization: Bearer` header: pooled traffic (the
 * linked gateway's token, which also opens the agent's routes to the gateway's job relay), or a
 * local caller, who needs one of the node's API keys when the node requires them. The raw chat
 * path and the Hono routes ask the same two questions here; `apiKey()` is the routes' middleware.
 */
import { bearerToken, HttpError } from "@gbt/protocol";
import type { MiddlewareHandler } from "hono";
import type { GatewayLink } from "../gateway-link.js";
import type { ApiKeyStore } from "./api-keys.js";

export interface NodeAuthOptions {
  /** Local API keys; with `requireApiKey` every route but /healthz needs one. */
  apiKeys?: Pick<ApiKeyStore, "verify">;
  requireApiKey?: boolean;
  /** The gateway link: its token marks pooled traffic. */
  gatewayLink?: Pick<GatewayLink, "isLinkToken">;
}

export interface NodeAuth {
  /** Whether the request bears the gateway's link token. */
  isPooled(authorization: string | undefined): boolean;
  /** Whether a local caller may use the API: keys are not required, or this one is live. */
  isAuthorized(authorization: string | undefined): boolean;
}

export function createNodeAuth(options: NodeAuthOptions): NodeAuth {
  const link = options.gatewayLink;
  return {
    isPooled(authorization) {
      if (!link) return false;
      const token = bearerToken(authorization);
      return token !== undefined && link.isLinkToken(token);
    },
    isAuthorized(authorization) {
      if (!options.requireApiKey) return true;
      const key = bearerToken(authorization);
      return key !== undefined && options.apiKeys?.verify(key) === true;
    },
  };
}

/** The 401 of a local caller without a valid key. */
export function invalidApiKey(): HttpError {
  return new HttpError(
    "invalid_api_key",
    "Missing or invalid API key (Authorization: Bearer gbt_sk_…).",
    null,
    {
      "www-authenticate": "Bearer",
    },
  );
}

/** Middleware: pooled requests and authorized local callers pass, anyone else gets 401. */
export function apiKey(auth: NodeAuth): MiddlewareHandler {
  return async (c, next) => {
    const authorization = c.req.header("authorization");
    if (!auth.isPooled(authorization) && !auth.isAuthorized(authorization)) throw invalidApiKey();
    await next();
  };
}
