/** `GET /v1/settlement`: the Settlement contract the gateway posts to and its latest epoch. */
import { gatewayPaths } from "../paths.js";
import { type SettlementStatus, settlementStatusSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetSettlementStatusReturnType = SettlementStatus;

export function getSettlementStatus(client: GatewayTransport): Promise<GetSettlementStatusReturnType> {
  return client.request({
    path: gatewayPaths.settlement,
    schema: settlementStatusSchema,
    what: "settlement status",
  });
}
