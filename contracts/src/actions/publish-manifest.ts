/** Commits a model manifest hash and its URI on chain with the publisher's stake. */
import type { Hash, Hex } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { modelRegistryAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";
import { ensureAllowance } from "./ensure-allowance.js";

export interface PublishManifestParameters {
  deployment: Pick<GbtDeployment, "token" | "registry">;
  manifestHash: Hex;
  uri: string;
  stake: bigint;
}

export async function publishManifest(
  client: ChainWriter,
  parameters: PublishManifestParameters,
): Promise<{ hash: Hash }> {
  const { deployment } = parameters;
  if (parameters.stake > 0n) {
    await ensureAllowance(client, {
      token: deployment.token,
      spender: deployment.registry,
      amount: parameters.stake,
    });
  }
  const { hash } = await sendContractTransaction(client, {
    address: deployment.registry,
    abi: modelRegistryAbi,
    functionName: "publish",
    args: [parameters.manifestHash, parameters.uri, parameters.stake],
    action: "publish the manifest",
  });
  return { hash };
}
