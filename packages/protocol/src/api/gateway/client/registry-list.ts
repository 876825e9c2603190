/** `GET /v1/registry/models[?status=…&name=…]`: the registered model versions, newest first, without documents. */
import type { RegistryEntry, RegistryStatus } from "../../../model-manifest-registry.js";
import { gatewayPaths } from "../paths.js";
import { registryListSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";
import { REGISTRY_CALL } from "./registry-call.js";

export interface ListRegistryModelsParameters {
  status?: RegistryStatus;
  name?: string;
}
export type ListRegistryModelsReturnType = RegistryEntry[];

export async function listRegistryModels(
  client: GatewayTransport,
  parameters: ListRegistryModelsParameters = {},
): Promise<ListRegistryModelsReturnType> {
  const list = await client.request({
    ...REGISTRY_CALL,
    path: gatewayPaths.registryModels,
    query: { status: parameters.status || undefined, name: parameters.name || undefined },
    schema: registryListSchema,
    what: "model registry",
    maxBytes: 64 * 1024 * 1024,
  });
  return list.data;
}
