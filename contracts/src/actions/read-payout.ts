/** What Settlement knows of a node: paid so far, and the current epoch and root. */
import type { Address, Hex } from "viem";
import { readContract } from "viem/actions";
import type { ChainReader } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";

export interface PayoutStatus {
  node: Address;
  paid: bigint;
  epoch: bigint;
  root: Hex;
}

export async function readPayout(
  client: ChainReader,
  parameters: { deployment: Pick<GbtDeployment, "settlement">; node: Address },
): Promise<PayoutStatus> {
  const base = { address: parameters.deployment.settlement, abi: settlementAbi } as const;
  try {
    const [paid, epoch, root] = await Promise.all([
      readContract(client, { ...base, functionName: "paidSoFar", args: [parameters.node] }),
      readContract(client, { ...base, functionName: "currentEpoch" }),
      readContract(client, { ...base, functionName: "currentRoot" }),
    ]);
    return { node: parameters.node, paid, epoch: BigInt(epoch), root };
  } catch (error) {
    throw toChainError(error, "read the payout");
  }
}
