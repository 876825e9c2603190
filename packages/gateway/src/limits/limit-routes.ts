/**
 * The admin API of the door's limits (admin token): `GET /v1/gateway/limits` (the defaults and
 * every override), `PUT /v1/gateway/limits/{keys,accounts}/:id` (merged over what the subject had;
 * null removes a limit) and `DELETE` of the same (back to gateway.json). A change applies to the
 * next request, requests in flight included in its concurrency count.
 */
import { HttpError, limitsInputSchema } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import { readJson } from "../http/body.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../http/gateway-env.js";
import { parseInput } from "../http/validate.js";
import type { LimitStore } from "./limit-store.js";

export const LIMITS_PATH = "/v1/gateway/limits";

export function limitRoutes(admin: MiddlewareHandler<GatewayEnv>, store: LimitStore): GatewayRoutes {
  const kindOf = (plural: string): "key" | "account" => {
    if (plural === "keys") return "key";
    if (plural === "accounts") return "account";
    throw new HttpError("not_found", `No such limit subject "${plural.slice(0, 32)}"; use keys or accounts.`);
  };
  return new Hono<GatewayEnv>()
    .use(`${LIMITS_PATH}`, admin)
    .use(`${LIMITS_PATH}/*`, admin)
    .get(LIMITS_PATH, named("admin_limits"), (c) =>
      c.json({ perKey: store.forKey(""), perAccount: store.forAccount(""), overrides: store.overrides() }),
    )
    .put(`${LIMITS_PATH}/:kind/:id`, named("admin_limits"), async (c) => {
      const kind = kindOf(c.req.param("kind"));
      const body = parseInput(
        limitsInputSchema,
        await readJson(c, 16 * 1024),
        ({ path, message }) => `Body ${path || "(root)"}: ${message}.`,
        "Send {requestsPerMinute, tokensPerMinute, concurrentRequests, budgetMicro, budgetPeriod}; null removes one.",
      );
      if (kind === "key" && (body.budgetMicro !== undefined || body.budgetPeriod !== undefined)) {
        throw new HttpError(
          "invalid_value",
          "A budget is an account's; set it on /limits/accounts/:id.",
          "budgetMicro",
        );
      }
      const id = c.req.param("id");
      return c.json({ kind, id, limits: store.set(kind, id, body) });
    })
    .delete(`${LIMITS_PATH}/:kind/:id`, named("admin_limits"), (c) => {
      const kind = kindOf(c.req.param("kind"));
      const id = c.req.param("id");
      return c.json({ kind, id, limits: store.clear(kind, id) });
    });
}
