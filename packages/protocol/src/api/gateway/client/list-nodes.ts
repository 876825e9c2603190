/** `GET /v1/gateway/nodes` with the admin token: the pool, one entry per instance. */
import { gatewayPaths } from "../paths.js";
import { type GatewayNode, gatewayNodeListSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type ListNodesReturnType = GatewayNode[];

export async function listNodes(client: GatewayTransport): Promise<ListNodesReturnType> {
  const list = await client.request({
    path: gatewayPaths.nodes,
    auth: "admin",
    schema: gatewayNodeListSchema,
    what: "node list",
    maxBytes: 64 * 1024 * 1024,
  });
  return list.data;
}
