/**
 * Every node's cumulative earnings as Settlement takes them: the ledger's provider earnings (the
 * sum of the credits ever posted to each node's provider account; held suspense credits are not
 * earnings) in token wei, checksummed. Cumulative, not per epoch, so a root always states the whole
 * debt and a missed epoch loses nothing.
 */
import type { CumulativeEarning } from "@gbt/contracts";
import { getAddress } from "viem";
import type { ProviderEarning } from "../billing/ledger.js";

export function cumulativeEarnings(
  earnings: readonly ProviderEarning[],
  weiPerMicroCredit: bigint,
): CumulativeEarning[] {
  return earnings.map((earning) => ({
    node: getAddress(earning.node),
    cumulative: BigInt(earning.earnedMicro) * weiPerMicroCredit,
  }));
}
