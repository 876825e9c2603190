/**
 * `POST /v1/registry/models/:name/:version/approve|delist` with the admin token: pending →
 * approved → delisted. A repeated transition answers unchanged; a delisted version stays
 * delisted (approving it is a CONFLICT).
 */
import type { RegistryModel } from "../../../model-manifest-registry.js";
import { gatewayPaths, type RegistryStatusAction } from "../paths.js";
import { registryModelSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";
import { REGISTRY_CALL } from "./registry-call.js";

export interface SetRegistryModelStatusParameters {
  name: string;
  version: string;
  action: RegistryStatusAction;
  /** Kept with the status, at most 500 characters. */
  reason?: string | undefined;
}
export type SetRegistryModelStatusReturnType = RegistryModel;

export function setRegistryModelStatus(
  client: GatewayTransport,
  parameters: SetRegistryModelStatusParameters,
): Promise<SetRegistryModelStatusReturnType> {
  return client.request({
    ...REGISTRY_CALL,
    method: "POST",
    path: gatewayPaths.registryModelStatus(parameters.name, parameters.version, parameters.action),
    auth: "admin",
    body: parameters.reason === undefined ? {} : { reason: parameters.reason },
    schema: registryModelSchema,
    what: "registry entry",
  });
}
