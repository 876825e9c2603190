/**
 * Claims `node`'s cumulative earnings with its Merkle proof; pays cumulative minus already paid.
 * NOTHING_TO_CLAIM when that is zero (checked before sending, so no gas is spent on it).
 */
import { GbtError } from "@gbt/protocol";
import { type Address, formatUnits, type Hash, type Hex } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";
import { readPayout } from "./read-payout.js";

export interface ClaimParameters {
  deployment: Pick<GbtDeployment, "settlement">;
  node: Address;
  cumulative: bigint;
  proof: readonly Hex[];
}

export async function claim(
  client: ChainWriter,
  parameters: ClaimParameters,
): Promise<{ hash: Hash; amount: bigint }> {
  const status = await readPayout(client, { deployment: parameters.deployment, node: parameters.node });
  if (parameters.cumulative <= status.paid) {
    throw new GbtError(
      "NOTHING_TO_CLAIM",
      `Nothing to claim: ${formatUnits(status.paid, 18)} GBT of ${formatUnits(parameters.cumulative, 18)} GBT earned is already paid.`,
      {
        details: {
          node: parameters.node,
          paid: status.paid.toString(),
          cumulative: parameters.cumulative.toString(),
        },
        hint: "Earnings settle once per epoch; claim again after the next one.",
      },
    );
  }
  const { hash, result } = await sendContractTransaction(client, {
    address: parameters.deployment.settlement,
    abi: settlementAbi,
    functionName: "claim",
    args: [parameters.node, parameters.cumulative, parameters.proof],
    action: "claim",
  });
  return { hash, amount: result as bigint };
}
