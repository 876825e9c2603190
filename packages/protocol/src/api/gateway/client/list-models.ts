/** `GET /v1/models` with a consumer API key: the models some active node serves. */
import { gatewayPaths } from "../paths.js";
import { type ListedModel, modelListSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type ListModelsReturnType = ListedModel[];

export async function listModels(client: GatewayTransport): Promise<ListModelsReturnType> {
  const list = await client.request({
    path: gatewayPaths.models,
    auth: "apiKey",
    schema: modelListSchema,
    what: "model list",
  });
  return list.data;
}
