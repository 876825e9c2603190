import { readStake, unbond } from "@gbt/contracts";
import { Args } from "@oclif/core";
import { formatGbt, parseGbtAmount } from "../../chain-amount.js";
import { confirmTransaction } from "../../chain-confirm.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { GbtCommand } from "../../gbt-command.js";

export interface StakeUnbondResult {
  node: string;
  amount: string;
  txHash: string;
  unbonding: string;
  releaseAt: string;
}

export default class StakeUnbond extends GbtCommand {
  static override summary = "Start unbonding stake; it can be withdrawn after the unbonding delay.";

  static override description =
    "Moves the amount from active stake into unbonding. Another unbond restarts the delay for everything still unbonding. Exit 7 when less is staked than asked.";

  static override examples = [
    {
      description: "Unbond 50 GBT without a prompt",
      command: "<%= config.bin %> <%= command.id %> 50 --yes",
    },
  ];

  static override args = {
    amount: Args.string({ description: "GBT to unbond (a decimal number).", required: true }),
  };

  static override flags = { ...chainSessionFlags };

  async run(): Promise<StakeUnbondResult> {
    const { args, flags } = await this.parse(StakeUnbond);
    const amount = parseGbtAmount(args.amount);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const node = session.client.account.address;
    const before = await readStake(session.client, { deployment: session.deployment, node });
    await confirmTransaction(
      `Unbond ${formatGbt(amount)} of ${formatGbt(before.staked)} staked (locked for ${before.unbondingDelaySeconds} s)`,
      { yes: flags.yes },
    );
    const { hash } = await unbond(session.client, { deployment: session.deployment, amount });
    const after = await readStake(session.client, { deployment: session.deployment, node });
    const releaseAt = new Date(Number(after.releaseAt) * 1000).toISOString();
    this.out(`Unbonding ${formatGbt(after.unbonding)}; withdraw after ${releaseAt} (tx ${hash}).`);
    return {
      node,
      amount: amount.toString(),
      txHash: hash,
      unbonding: after.unbonding.toString(),
      releaseAt,
    };
  }
}
