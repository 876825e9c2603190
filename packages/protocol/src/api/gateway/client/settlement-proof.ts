/**
 * `GET /v1/settlement/proofs/:node`: the node's cumulative earnings in the latest posted epoch
 * and their Merkle proof, what `claim` on the Settlement contract takes. NOT_FOUND when no epoch
 * is posted yet or the node has no earnings in it.
 */
import { gatewayPaths } from "../paths.js";
import { type SettlementProof, settlementProofSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export type GetSettlementProofReturnType = SettlementProof;

export function getSettlementProof(
  client: GatewayTransport,
  node: string,
): Promise<GetSettlementProofReturnType> {
  return client.request({
    path: gatewayPaths.settlementProof(node),
    schema: settlementProofSchema,
    what: "payout proof",
    timeoutMs: 15_000,
  });
}
