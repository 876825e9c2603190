import { Flags } from "@oclif/core";
import { formatGbt } from "../../chain-amount.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { labelTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";
import { type PayoutStatusResult, readPayoutStatus, resolvePayoutGateway } from "../../payout-status.js";

export const payoutGatewayFlag = Flags.string({
  description: "Gateway serving this node's payout proofs (default: chain.json's, then gbt serve's).",
});

export default class PayoutStatus extends GbtCommand {
  static override summary =
    "Show this node's earnings: earned (epoch in effect), paid on chain, claimable now, and a pending epoch's time.";

  static override examples = [
    {
      description: "Earned, paid and claimable, as JSON",
      command: "<%= config.bin %> <%= command.id %> --json",
    },
  ];

  static override flags = {
    gateway: payoutGatewayFlag,
    "rpc-url": chainSessionFlags["rpc-url"],
    "passphrase-file": chainSessionFlags["passphrase-file"],
  };

  async run(): Promise<PayoutStatusResult> {
    const { flags } = await this.parse(PayoutStatus);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const { status } = await readPayoutStatus(session, await resolvePayoutGateway(flags.gateway, session));
    this.out(
      labelTable([
        ["Node", status.node],
        ["Earned", status.earned === null ? `unknown (${status.note})` : formatGbt(BigInt(status.earned))],
        ["Paid", formatGbt(BigInt(status.paid))],
        ["Claimable", formatGbt(BigInt(status.claimable))],
        ["Epoch", `${status.epoch} (in effect)`],
        ...(status.pending
          ? [
              [
                "Pending",
                `epoch ${status.pending.epoch}, takes effect ${status.pending.effectiveAt}`,
              ] as const,
            ]
          : []),
        ["Balance", formatGbt(BigInt(status.balance))],
      ]),
    );
    return status;
  }
}
