/**
 * Where Settlement stands: the root claims verify against now, the root still waiting for its
 * delay (if any), the funding, and the delay and per-epoch liability bound governance has set.
 * A pending root takes effect by the chain's clock alone, so this is what to show, not a cache.
 */
import type { Hex } from "viem";
import { readContract } from "viem/actions";
import type { ChainReader } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";

export interface SettlementRoot {
  epoch: bigint;
  root: Hex;
  /** Sum of every node's cumulative earnings in the root, token wei. */
  total: bigint;
  /** Unix seconds (chain time) at which claims verify against this root. */
  effectiveAt: number;
}

export interface SettlementState {
  /** The root claims verify against; epoch 0 and a zero root before the first takes effect. */
  effective: SettlementRoot;
  /** The root waiting for its delay; null when none waits. */
  pending: SettlementRoot | null;
  totalFunded: bigint;
  rootDelaySeconds: number;
  maxEpochLiability: bigint;
}

const ZERO_ROOT = `0x${"0".repeat(64)}`;

function toRoot([epoch, root, total, effectiveAt]: readonly [number | bigint, Hex, bigint, number | bigint]) {
  return { epoch: BigInt(epoch), root, total, effectiveAt: Number(effectiveAt) };
}

export async function readSettlementState(
  client: ChainReader,
  parameters: { deployment: Pick<GbtDeployment, "settlement"> },
): Promise<SettlementState> {
  const base = { address: parameters.deployment.settlement, abi: settlementAbi } as const;
  try {
    const [effective, pending, totalFunded, rootDelay, maxEpochLiability] = await Promise.all([
      readContract(client, { ...base, functionName: "effectiveRoot" }),
      readContract(client, { ...base, functionName: "pendingRoot" }),
      readContract(client, { ...base, functionName: "totalFunded" }),
      readContract(client, { ...base, functionName: "rootDelay" }),
      readContract(client, { ...base, functionName: "maxEpochLiability" }),
    ]);
    return {
      effective: toRoot(effective),
      pending: pending[1] === ZERO_ROOT ? null : toRoot(pending),
      totalFunded,
      rootDelaySeconds: Number(rootDelay),
      maxEpochLiability,
    };
  } catch (error) {
    throw toChainError(error, "read the Settlement contract");
  }
}
