/**
 * Operability: `GET /healthz` (a summary; 503 with the same body while draining) and
 * `GET /metrics` (Prometheus text).
 */
import { gatewayPaths } from "@gbt/protocol";
import { Hono } from "hono";
import type { GatewayMetrics } from "../../gateway-metrics.js";
import type { InstancePool } from "../../pool/instance-pool.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";

export interface OperabilityParts {
  address: string;
  chainId: number;
  pool: Pick<InstancePool, "size" | "activeModels">;
  metrics: GatewayMetrics;
  /** Whether the server is draining, and the chat completions it serves now. */
  state(): { draining: boolean; inFlight: number };
}

export function operabilityRoutes(parts: OperabilityParts): GatewayRoutes {
  const { pool, metrics } = parts;
  return new Hono<GatewayEnv>()
    .get(gatewayPaths.health, named("healthz"), (c) => {
      const { draining, inFlight } = parts.state();
      return c.json(
        {
          status: draining ? "draining" : "ok",
          address: parts.address,
          chainId: parts.chainId,
          instances: pool.size,
          models: pool.activeModels(),
          inFlight,
        },
        draining ? 503 : 200,
      );
    })
    .get(gatewayPaths.metrics, named("metrics"), async (c) =>
      c.body(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
    );
}
