/** An account's GBT balance, in wei. */
import type { Address } from "viem";
import { readContract } from "viem/actions";
import type { ChainReader } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import { gbtTokenAbi } from "../generated/abis.js";

export async function readGbtBalance(
  client: ChainReader,
  parameters: { token: Address; account: Address },
): Promise<bigint> {
  try {
    return await readContract(client, {
      address: parameters.token,
      abi: gbtTokenAbi,
      functionName: "balanceOf",
      args: [parameters.account],
    });
  } catch (error) {
    throw toChainError(error, "read the GBT balance");
  }
}
