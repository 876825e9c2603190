/**
 * `GET /v1/gateway/nodes/:id/trust`: a node's tier, reputation and evidence ids as the gateway's
 * verification sees them. Public: an operator reads its own node's standing without the admin token.
 */
import { gatewayPaths } from "../paths.js";
import { type NodeTrust, nodeTrustSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetNodeTrustReturnType = NodeTrust;

/** `node` is the node's address (its instance id, in any case). */
export function getNodeTrust(client: GatewayTransport, node: string): Promise<GetNodeTrustReturnType> {
  return client.request({
    path: gatewayPaths.nodeTrust(node.toLowerCase()),
    schema: nodeTrustSchema,
    what: "trust view",
    hints: { NOT_FOUND: "A node appears once it has registered (gbt serve --gateway URL)." },
  });
}
