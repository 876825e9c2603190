/**
 * The one path every write takes: simulate (so a revert is decoded with every gbt error before
 * anything is signed), send, wait for the receipt, and map failures to GbtErrors.
 */
import { GbtError } from "@gbt/protocol";
import type { Abi, Address, Hash, TransactionReceipt } from "viem";
import { simulateContract, waitForTransactionReceipt, writeContract } from "viem/actions";
import type { ChainWriter } from "./chain-client.js";
import { toChainError } from "./chain-error.js";
import { gbtErrorsAbi } from "./generated/abis.js";

export interface SendContractTransactionParameters {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  /** What the user asked for, in words ("stake", "claim"): it names the action in errors. */
  action: string;
}

export interface SentTransaction {
  hash: Hash;
  receipt: TransactionReceipt;
  /** The function's return value as the simulation saw it. */
  result: unknown;
}

export async function sendContractTransaction(
  client: ChainWriter,
  parameters: SendContractTransactionParameters,
): Promise<SentTransaction> {
  const abi = [...parameters.abi, ...gbtErrorsAbi] as Abi;
  try {
    const { request, result } = await simulateContract(client, {
      address: parameters.address,
      abi,
      functionName: parameters.functionName,
      args: parameters.args,
      account: client.account,
    });
    const hash = await writeContract(client, request as Parameters<typeof writeContract>[1]);
    const receipt = await waitForTransactionReceipt(client, { hash });
    if (receipt.status !== "success") {
      throw new GbtError("TRANSACTION_REVERTED", `The ${parameters.action} transaction reverted.`, {
        details: { hash, block: receipt.blockNumber.toString() },
      });
    }
    return { hash, receipt, result };
  } catch (error) {
    throw toChainError(error, parameters.action);
  }
}
