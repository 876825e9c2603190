/**
 * `GET /v1/gateway/ledger/check` with the admin token: the double-entry ledger's invariants, once
 * every finished request is settled. A broken ledger answers 500 with the same report: that is
 * the answer (`ok: false`), not a failure of the call.
 */
import { gatewayPaths } from "../paths.js";
import { type LedgerCheck, ledgerCheckSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type CheckLedgerReturnType = LedgerCheck;

export function checkLedger(client: GatewayTransport): Promise<CheckLedgerReturnType> {
  return client.request({
    path: gatewayPaths.ledgerCheck,
    auth: "admin",
    schema: ledgerCheckSchema,
    what: "ledger check",
    answerStatuses: [500],
    maxBytes: 64 * 1024 * 1024,
  });
}
