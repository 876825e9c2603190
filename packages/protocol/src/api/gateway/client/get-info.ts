/** `GET /v1/gateway/info`: the gateway's address, chain and heartbeat interval (what nodes and publishers sign for). */
import type { GatewayInfo } from "../../../gateway-link.js";
import { gatewayPaths } from "../paths.js";
import { gatewayInfoSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface GetInfoParameters {
  /** Retry network failures and 5xx (a publisher's first call, from CI). */
  retry?: boolean;
}
export type GetInfoReturnType = GatewayInfo;

export function getInfo(
  client: GatewayTransport,
  parameters: GetInfoParameters = {},
): Promise<GetInfoReturnType> {
  return client.request({
    path: gatewayPaths.info,
    schema: gatewayInfoSchema,
    what: "info",
    ...(parameters.retry ? { retry: true } : {}),
  });
}
