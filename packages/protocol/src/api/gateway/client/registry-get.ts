/** `GET /v1/registry/models/:name/:version`: one entry with its signed manifest (verify it yourself). */
import type { RegistryModel } from "../../../model-manifest-registry.js";
import { gatewayPaths } from "../paths.js";
import { registryModelSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";
import { REGISTRY_CALL } from "./registry-call.js";

export interface GetRegistryModelParameters {
  name: string;
  version: string;
}
export type GetRegistryModelReturnType = RegistryModel;

export function getRegistryModel(
  client: GatewayTransport,
  parameters: GetRegistryModelParameters,
): Promise<GetRegistryModelReturnType> {
  return client.request({
    ...REGISTRY_CALL,
    path: gatewayPaths.registryModel(parameters.name, parameters.version),
    schema: registryModelSchema,
    what: "registry entry",
  });
}
