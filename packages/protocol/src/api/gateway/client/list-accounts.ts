/** `GET /v1/gateway/accounts` with the admin token: every consumer account with its balance, oldest first. */
import { gatewayPaths } from "../paths.js";
import { type AccountInfo, accountListSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type ListAccountsReturnType = AccountInfo[];

export async function listAccounts(client: GatewayTransport): Promise<ListAccountsReturnType> {
  const list = await client.request({
    path: gatewayPaths.accounts,
    auth: "admin",
    schema: accountListSchema,
    what: "account list",
    maxBytes: 64 * 1024 * 1024,
  });
  return list.data;
}
