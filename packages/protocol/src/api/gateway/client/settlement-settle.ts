/**
 * `POST /v1/settlement/epochs` with the admin token: settles an epoch now (posts the Merkle root
 * of cumulative earnings on chain), or says why nothing was posted. A chain failure is the
 * chain's refusal under its own code (CHAIN_UNREACHABLE, INSUFFICIENT_FUNDS…).
 */
import { gatewayPaths } from "../paths.js";
import { type EpochOutcome, epochOutcomeSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type SettleEpochReturnType = EpochOutcome;

export function settleEpoch(client: GatewayTransport): Promise<SettleEpochReturnType> {
  return client.request({
    method: "POST",
    path: gatewayPaths.settlementEpochs,
    auth: "admin",
    schema: epochOutcomeSchema,
    what: "epoch outcome",
    timeoutMs: 60_000,
  });
}
