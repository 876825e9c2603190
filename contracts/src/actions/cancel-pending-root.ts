/**
 * Governance drops the settlement root still waiting for its delay, so it never pays (the client
 * must hold Settlement's admin role). NOT_FOUND when none waits or it has already taken effect.
 */
import type { Hash } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export async function cancelPendingRoot(
  client: ChainWriter,
  parameters: { deployment: Pick<GbtDeployment, "settlement"> },
): Promise<{ hash: Hash }> {
  const { hash } = await sendContractTransaction(client, {
    address: parameters.deployment.settlement,
    abi: settlementAbi,
    functionName: "cancelPendingRoot",
    args: [],
    action: "cancel the pending settlement root",
  });
  return { hash };
}
