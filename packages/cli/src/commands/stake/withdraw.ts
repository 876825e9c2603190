import { readStake, withdraw } from "@gbt/contracts";
import { GbtError } from "@gbt/protocol";
import { formatGbt } from "../../chain-amount.js";
import { confirmTransaction } from "../../chain-confirm.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { GbtCommand } from "../../gbt-command.js";

export interface StakeWithdrawResult {
  node: string;
  amount: string;
  txHash: string;
}

export default class StakeWithdraw extends GbtCommand {
  static override summary = "Withdraw unbonded stake once its unbonding delay has passed.";

  static override description =
    "Exit 9 (UNBONDING_NOT_FINISHED) before the delay has passed, with the release time; exit 8 when nothing unbonds.";

  static override examples = [
    { description: "From a script", command: "<%= config.bin %> <%= command.id %> --yes --json" },
  ];

  static override flags = { ...chainSessionFlags };

  async run(): Promise<StakeWithdrawResult> {
    const { flags } = await this.parse(StakeWithdraw);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const node = session.client.account.address;
    const [status, block] = await Promise.all([
      readStake(session.client, { deployment: session.deployment, node }),
      session.client.request({ method: "eth_getBlockByNumber", params: ["latest", false] }),
    ]);
    // Checked against the chain's clock before asking, so nobody confirms a transaction that must fail.
    if (status.unbonding === 0n) {
      throw new GbtError("NOT_FOUND", "There is no unbonding stake to withdraw.", {
        hint: "Start with `gbt stake unbond <amount>`, then withdraw after the delay.",
      });
    }
    if (BigInt(block?.timestamp ?? 0) < status.releaseAt) {
      const releaseAt = new Date(Number(status.releaseAt) * 1000).toISOString();
      throw new GbtError("UNBONDING_NOT_FINISHED", `The unbonding stake is locked until ${releaseAt}.`, {
        details: { node, unbonding: status.unbonding.toString(), releaseAt },
        hint: "Run `gbt stake withdraw` again after that time (`gbt stake status` shows it).",
      });
    }
    await confirmTransaction(`Withdraw ${formatGbt(status.unbonding)} of unbonded stake to ${node}`, {
      yes: flags.yes,
    });
    const { hash, amount } = await withdraw(session.client, { deployment: session.deployment });
    this.out(`Withdrew ${formatGbt(amount)} to ${node} (tx ${hash}).`);
    return { node, amount: amount.toString(), txHash: hash };
  }
}
