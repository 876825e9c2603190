/** `GET /v1/gateway/info`: the gateway's address, chain and heartbeat interval (what nodes and publishers sign for). */
import type { GatewayInfo } from "../../../gateway-link.js";
import { gatewayPaths } from "../paths.js";
import { gatewayInfoSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetInfoReturnType = GatewayInfo;

export function getInfo(client: GatewayTransport): Promise<GetInfoReturnType> {
  return client.request({ path: gatewayPaths.info, schema: gatewayInfoSchema, what: "info" });
}
