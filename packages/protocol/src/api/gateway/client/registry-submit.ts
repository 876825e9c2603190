/**
 * `POST /v1/registry/models`: submits a signed manifest. 201 when registered, 200 when the same
 * content is already there; a version holding other content is refused (CONFLICT). The
 * idempotency key is the same on every retry of one call.
 */
import { randomUUID } from "node:crypto";
import type { SignedModelManifest } from "../../../model-manifest.js";
import { IDEMPOTENCY_KEY_HEADER, type RegistrySubmitResponse } from "../../../model-manifest-registry.js";
import { gatewayPaths } from "../paths.js";
import { registrySubmitResponseSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";
import { REGISTRY_CALL } from "./registry-call.js";

export interface SubmitRegistryModelParameters {
  signed: SignedModelManifest;
  /** Default a fresh UUID. */
  idempotencyKey?: string;
}
export type SubmitRegistryModelReturnType = RegistrySubmitResponse;

export function submitRegistryModel(
  client: GatewayTransport,
  parameters: SubmitRegistryModelParameters,
): Promise<SubmitRegistryModelReturnType> {
  return client.request({
    ...REGISTRY_CALL,
    method: "POST",
    path: gatewayPaths.registryModels,
    body: parameters.signed,
    headers: { [IDEMPOTENCY_KEY_HEADER]: parameters.idempotencyKey ?? randomUUID() },
    schema: registrySubmitResponseSchema,
    what: "publish answer",
  });
}
