/**
 * `POST /v1/gateway/accounts` with the admin token: a consumer account (granted the starting
 * credits through the ledger) and its first API key, whose secret is in this answer only.
 */
import { gatewayPaths } from "../paths.js";
import { type CreatedAccount, createdAccountSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface CreateAccountParameters {
  /** 1–64 letters, digits, spaces or . _ @ -. */
  name: string;
  /** The first key's name (default "default"). */
  keyName?: string;
}
export type CreateAccountReturnType = CreatedAccount;

export function createAccount(
  client: GatewayTransport,
  parameters: CreateAccountParameters,
): Promise<CreateAccountReturnType> {
  return client.request({
    method: "POST",
    path: gatewayPaths.accounts,
    auth: "admin",
    body: {
      name: parameters.name,
      ...(parameters.keyName === undefined ? {} : { keyName: parameters.keyName }),
    },
    schema: createdAccountSchema,
    what: "new account",
  });
}
