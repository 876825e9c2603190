/** GBT amounts on the command line: decimal GBT in ("12.5"), wei inside, decimal GBT out. */
import { GbtError } from "@gbt/protocol";
import { formatUnits, parseUnits } from "viem";

export function parseGbtAmount(text: string, what = "amount"): bigint {
  if (!/^\d{1,12}(\.\d{1,18})?$/.test(text.trim())) {
    throw new GbtError("INVALID_INPUT", `The ${what} "${text.slice(0, 40)}" is not a GBT amount.`, {
      hint: "Give GBT as a decimal number, e.g. 100 or 12.5.",
    });
  }
  const wei = parseUnits(text.trim(), 18);
  if (wei <= 0n) throw new GbtError("INVALID_INPUT", `The ${what} must be above zero.`);
  return wei;
}

export function formatGbt(wei: bigint): string {
  return `${formatUnits(wei, 18)} GBT`;
}
