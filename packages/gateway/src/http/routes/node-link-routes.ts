/**
 * The node link's routes: `GET /v1/gateway/info` (the gateway's address, chain and heartbeat
 * interval), `POST /v1/gateway/register` and `POST /v1/gateway/heartbeat` (signed objects, checked
 * by the pool's registrar). Public: the signatures are the authentication.
 */
import { gatewayPaths, httpError, isGbtError } from "@gbt/protocol";
import { Hono } from "hono";
import type { NodeRegistrar } from "../../pool/node-registrar.js";
import { readJson } from "../body.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";

export function nodeLinkRoutes(registrar: NodeRegistrar): GatewayRoutes {
  return new Hono<GatewayEnv>()
    .get(gatewayPaths.info, named("info"), (c) => c.json(registrar.info()))
    .post(gatewayPaths.register, named("register"), async (c) =>
      c.json(await registrar.register(await readJson(c, 1024 * 1024))),
    )
    .post(gatewayPaths.heartbeat, named("heartbeat"), async (c) => {
      try {
        await registrar.heartbeat(await readJson(c, 256 * 1024));
      } catch (error) {
        if (isGbtError(error, "NOT_FOUND")) throw httpError("unknown_instance", error.message);
        throw error;
      }
      return c.json({ ok: true });
    });
}
