/**
 * This node's payout proof from the gateway (`GET /v1/settlement/proofs/:node`, parsed by the
 * gateway client), as the chain actions take it: amounts and epoch as bigints. No proof yet is
 * NOTHING_TO_CLAIM with the gateway's reason, what `gbt payout status` shows as its note.
 */
import { createGatewayClient, GbtError, isGbtError, type SettlementProof } from "@gbt/protocol";
import type { Address, Hex } from "viem";

export interface PayoutProof {
  node: Address;
  cumulative: bigint;
  proof: Hex[];
  epoch: bigint;
  root: Hex;
  contract: Address;
  chainId: number;
}

export async function fetchPayoutProof(gatewayUrl: string, node: Address): Promise<PayoutProof> {
  const client = createGatewayClient({
    url: gatewayUrl,
    hints: {
      unreachable:
        "Check --gateway (or the gateway in chain.json) and that the gateway runs with settlement on.",
    },
  });
  let proof: SettlementProof;
  try {
    proof = await client.getSettlementProof(node);
  } catch (error) {
    if (!isGbtError(error, "NOT_FOUND")) throw error;
    // The gateway says why (no epoch posted yet, no earnings in it); a bare 404 says nothing.
    const said = typeof error.details?.code === "string";
    throw new GbtError(
      "NOTHING_TO_CLAIM",
      said ? error.message : `The gateway has no payout proof for ${node}.`,
      {
        details: { node, gatewayUrl },
        hint: "Earnings settle once per epoch after the node served paid requests; try again later.",
        cause: error,
      },
    );
  }
  return {
    node: proof.node,
    cumulative: BigInt(proof.cumulative),
    proof: proof.proof as Hex[],
    epoch: BigInt(proof.epoch),
    root: proof.root as Hex,
    contract: proof.contract,
    chainId: proof.chainId,
  };
}
