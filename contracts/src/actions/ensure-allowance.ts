/** Approves `spender` for `amount` of GBT when the current allowance is lower (one transaction at most). */
import type { Address } from "viem";
import { readContract } from "viem/actions";
import type { ChainWriter } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import { gbtTokenAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export async function ensureAllowance(
  client: ChainWriter,
  parameters: { token: Address; spender: Address; amount: bigint },
): Promise<void> {
  const current = await readContract(client, {
    address: parameters.token,
    abi: gbtTokenAbi,
    functionName: "allowance",
    args: [client.account.address, parameters.spender],
  }).catch((error) => {
    throw toChainError(error, "read the allowance");
  });
  if (current >= parameters.amount) return;
  await sendContractTransaction(client, {
    address: parameters.token,
    abi: gbtTokenAbi,
    functionName: "approve",
    args: [parameters.spender, parameters.amount],
    action: "approve GBT",
  });
}
