import { claim } from "@gbt/contracts";
import { GbtError } from "@gbt/protocol";
import { formatGbt } from "../../chain-amount.js";
import { confirmTransaction } from "../../chain-confirm.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { GbtCommand } from "../../gbt-command.js";
import { readPayoutStatus, resolvePayoutGateway } from "../../payout-status.js";
import { payoutGatewayFlag } from "./status.js";

export interface PayoutClaimResult {
  node: string;
  amount: string;
  cumulative: string;
  epoch: string;
  txHash: string;
}

export default class PayoutClaim extends GbtCommand {
  static override summary = "Claim this node's settled earnings on chain with the gateway's Merkle proof.";

  static override description =
    "Fetches the node's proof of cumulative earnings in the root in effect from the gateway (GET /v1/settlement/proofs/:node) and claims on the Settlement contract, which pays cumulative minus what was already paid, to the node key. A newly posted root pays only after the contract's delay (`gbt payout status` shows when). Exit 7 (NOTHING_TO_CLAIM) when nothing new has settled or taken effect; exit 4 (INVALID_PROOF) when the contract refuses the proof.";

  static override examples = [
    { description: "Claim with the gateway from chain.json", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "From a script",
      command: "<%= config.bin %> <%= command.id %> --gateway http://127.0.0.1:8080 --yes --json",
    },
  ];

  static override flags = { gateway: payoutGatewayFlag, ...chainSessionFlags };

  async run(): Promise<PayoutClaimResult> {
    const { flags } = await this.parse(PayoutClaim);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const gatewayUrl = await resolvePayoutGateway(flags.gateway, session);
    if (!gatewayUrl) {
      throw new GbtError("MISSING_INPUT", "No gateway to fetch the payout proof from.", {
        hint: "Pass --gateway URL (the gateway that settles this node's earnings).",
      });
    }
    const { status, proof } = await readPayoutStatus(session, gatewayUrl);
    if (!proof || BigInt(status.claimable) === 0n) {
      const { pending } = status;
      throw new GbtError(
        "NOTHING_TO_CLAIM",
        proof
          ? `Nothing to claim: ${formatGbt(BigInt(status.paid))} of ${formatGbt(proof.cumulative)} earned is already paid.`
          : (status.note ?? "Nothing to claim yet."),
        {
          details: { node: status.node, paid: status.paid, earned: status.earned, pending },
          hint: pending
            ? `Epoch ${pending.epoch} is posted and takes effect at ${pending.effectiveAt}; claim again after that.`
            : "Earnings settle once per epoch; claim again after the next one.",
        },
      );
    }
    await confirmTransaction(
      `Claim ${formatGbt(BigInt(status.claimable))} for node ${status.node} (epoch ${proof.epoch})`,
      {
        yes: flags.yes,
      },
    );
    const { hash, amount } = await claim(session.client, {
      deployment: session.deployment,
      node: status.node as `0x${string}`,
      cumulative: proof.cumulative,
      proof: proof.proof,
    });
    this.out(`Claimed ${formatGbt(amount)} to ${status.node} (tx ${hash}).`);
    return {
      node: status.node,
      amount: amount.toString(),
      cumulative: proof.cumulative.toString(),
      epoch: proof.epoch.toString(),
      txHash: hash,
    };
  }
}
