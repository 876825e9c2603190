/** A node's stake: active, unbonding, when the unbonding is released, and open slashes. */
import type { Address } from "viem";
import { readContract } from "viem/actions";
import type { ChainReader } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import { nodeStakingAbi } from "../generated/abis.js";

export interface StakeStatus {
  node: Address;
  staked: bigint;
  unbonding: bigint;
  /** Unix seconds when the unbonding can be withdrawn; 0 when nothing unbonds. */
  releaseAt: bigint;
  openSlashes: bigint;
  unbondingDelaySeconds: bigint;
}

export async function readStake(
  client: ChainReader,
  parameters: { deployment: Pick<GbtDeployment, "staking">; node: Address },
): Promise<StakeStatus> {
  const base = { address: parameters.deployment.staking, abi: nodeStakingAbi } as const;
  try {
    const [staked, [unbonding, releaseAt], openSlashes, unbondingDelaySeconds] = await Promise.all([
      readContract(client, { ...base, functionName: "stakeOf", args: [parameters.node] }),
      readContract(client, { ...base, functionName: "unbondingOf", args: [parameters.node] }),
      readContract(client, { ...base, functionName: "openSlashes", args: [parameters.node] }),
      readContract(client, { ...base, functionName: "unbondingDelay" }),
    ]);
    return {
      node: parameters.node,
      staked,
      unbonding,
      releaseAt: BigInt(releaseAt),
      openSlashes,
      unbondingDelaySeconds: BigInt(unbondingDelaySeconds),
    };
  } catch (error) {
    throw toChainError(error, "read the stake");
  }
}
