/** Posts an epoch's cumulative-earnings root (the client must hold the settler role). */
import type { Hash, Hex } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

export interface PostRootParameters {
  deployment: Pick<GbtDeployment, "settlement">;
  epoch: bigint;
  root: Hex;
  /** Sum of every node's cumulative earnings in the tree. */
  total: bigint;
}

export async function postRoot(client: ChainWriter, parameters: PostRootParameters): Promise<{ hash: Hash }> {
  const { hash } = await sendContractTransaction(client, {
    address: parameters.deployment.settlement,
    abi: settlementAbi,
    functionName: "postRoot",
    args: [parameters.epoch, parameters.root, parameters.total],
    action: "post the settlement root",
  });
  return { hash };
}
