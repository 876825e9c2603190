/** Sends GBT from the client's account (e.g. the dev chain's treasury funding a node key). */
import type { Address, Hash } from "viem";
import type { ChainWriter } from "../chain-client.js";
import { gbtTokenAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export async function transferGbt(
  client: ChainWriter,
  parameters: { token: Address; to: Address; amount: bigint },
): Promise<{ hash: Hash }> {
  const { hash } = await sendContractTransaction(client, {
    address: parameters.token,
    abi: gbtTokenAbi,
    functionName: "transfer",
    args: [parameters.to, parameters.amount],
    action: "transfer GBT",
  });
  return { hash };
}
