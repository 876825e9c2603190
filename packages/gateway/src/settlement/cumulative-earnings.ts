/**
 * Every node's cumulative earnings from the ledger: the sum of the credits ever posted to its
 * provider account (held suspense credits are not earnings), converted to token wei. Cumulative,
 * not per epoch, so a root always states the whole debt and a missed epoch loses nothing.
 */
import type { CumulativeEarning } from "@gbt/contracts";
import { getAddress } from "viem";
import type { GatewayDatabase } from "../gateway-database.js";

export function readCumulativeEarnings(db: GatewayDatabase, weiPerMicroCredit: bigint): CumulativeEarning[] {
  const rows = db
    .prepare(
      `SELECT account, SUM(amount) AS earned FROM ledger_entries
       WHERE account LIKE 'provider:0x%' AND amount > 0
       GROUP BY account ORDER BY account`,
    )
    .all() as { account: string; earned: number }[];
  return rows.map((row) => ({
    node: getAddress(row.account.slice("provider:".length)),
    cumulative: BigInt(row.earned) * weiPerMicroCredit,
  }));
}
