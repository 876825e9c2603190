/** Moves `amount` of the client's (the node's) stake into unbonding; it can leave after the delay. */
import { GbtError } from "@gbt/protocol";
import type { Hash } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { nodeStakingAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export async function unbond(
  client: ChainWriter,
  parameters: { deployment: Pick<GbtDeployment, "staking">; amount: bigint },
): Promise<{ hash: Hash }> {
  if (parameters.amount <= 0n)
    throw new GbtError("INVALID_INPUT", "The amount to unbond must be above zero.");
  const { hash } = await sendContractTransaction(client, {
    address: parameters.deployment.staking,
    abi: nodeStakingAbi,
    functionName: "unbond",
    args: [parameters.amount],
    action: "unbond",
  });
  return { hash };
}
