/** `POST /v1/gateway/accounts/:id/keys` with the admin token: another API key for an account, shown once. */
import { gatewayPaths } from "../paths.js";
import { type CreatedApiKey, createdApiKeySchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface CreateKeyParameters {
  accountId: string;
  /** The key's name (default "default"). */
  name?: string;
}
export type CreateKeyReturnType = CreatedApiKey;

export function createKey(
  client: GatewayTransport,
  parameters: CreateKeyParameters,
): Promise<CreateKeyReturnType> {
  return client.request({
    method: "POST",
    path: gatewayPaths.accountKeys(parameters.accountId),
    auth: "admin",
    body: parameters.name === undefined ? {} : { name: parameters.name },
    schema: createdApiKeySchema,
    what: "new API key",
    hints: { NOT_FOUND: "List the accounts with `gbt gateway keys list`." },
  });
}
