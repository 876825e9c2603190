/** The consumer API beside the hot path: `GET /v1/models` (API key), the models some active node serves. */
import { gatewayPaths } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import type { InstancePool } from "../../pool/instance-pool.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";

export function consumerRoutes(parts: {
  pool: Pick<InstancePool, "activeModels">;
  apiKey: MiddlewareHandler<GatewayEnv>;
}): GatewayRoutes {
  return new Hono<GatewayEnv>().get(gatewayPaths.models, named("models"), parts.apiKey, (c) =>
    c.json({
      object: "list",
      data: parts.pool.activeModels().map((id) => ({ id, object: "model", created: 0, owned_by: "gbt" })),
    }),
  );
}
