/** What Settlement knows of a node: paid so far, the root in effect, and the one still pending. */
import type { Address, Hex } from "viem";
import { readContract } from "viem/actions";
import type { ChainReader } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import { settlementAbi } from "../generated/abis.js";
import { readSettlementState, type SettlementRoot } from "./read-settlement-state.js";

export interface PayoutStatus {
  node: Address;
  paid: bigint;
  /** The epoch in effect: claims verify against its root. */
  epoch: bigint;
  root: Hex;
  /** A posted root not yet in effect (claims of it wait until `effectiveAt`); null when none. */
  pending: SettlementRoot | null;
}

export async function readPayout(
  client: ChainReader,
  parameters: { deployment: Pick<GbtDeployment, "settlement">; node: Address },
): Promise<PayoutStatus> {
  const [paid, state] = await Promise.all([
    readContract(client, {
      address: parameters.deployment.settlement,
      abi: settlementAbi,
      functionName: "paidSoFar",
      args: [parameters.node],
    }).catch((error: unknown) => {
      throw toChainError(error, "read the payout");
    }),
    readSettlementState(client, parameters),
  ]);
  return {
    node: parameters.node,
    paid,
    epoch: state.effective.epoch,
    root: state.effective.root,
    pending: state.pending,
  };
}
