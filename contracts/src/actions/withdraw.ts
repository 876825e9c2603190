/** Withdraws the client's finished unbonding; UNBONDING_NOT_FINISHED before the delay has passed. */
import type { Hash } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { nodeStakingAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export async function withdraw(
  client: ChainWriter,
  parameters: { deployment: Pick<GbtDeployment, "staking"> },
): Promise<{ hash: Hash; amount: bigint }> {
  const { hash, result } = await sendContractTransaction(client, {
    address: parameters.deployment.staking,
    abi: nodeStakingAbi,
    functionName: "withdraw",
    args: [],
    action: "withdraw",
  });
  return { hash, amount: result as bigint };
}
