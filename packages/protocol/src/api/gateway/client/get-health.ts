/** `GET /healthz`: whether the gateway serves or drains, with its pool's size and models. */
import { gatewayPaths } from "../paths.js";
import { type GatewayHealth, gatewayHealthSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetHealthReturnType = GatewayHealth;

/** A draining gateway answers 503 with the same body: that is an answer, not a failure. */
export function getHealth(client: GatewayTransport): Promise<GetHealthReturnType> {
  return client.request({
    path: gatewayPaths.health,
    schema: gatewayHealthSchema,
    what: "health",
    answerStatuses: [503],
  });
}
