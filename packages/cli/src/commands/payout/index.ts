import PayoutStatus from "./status.js";

/** `gbt payout` alone shows the status, like `gbt payout status`. */
export default class Payout extends PayoutStatus {
  static override summary =
    "Show this node's earnings (same as `gbt payout status`); `gbt payout claim` claims them.";
}
