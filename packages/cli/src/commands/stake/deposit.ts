import { readGbtBalance, readStake, stake } from "@gbt/contracts";
import { Args } from "@oclif/core";
import { formatGbt, parseGbtAmount } from "../../chain-amount.js";
import { confirmTransaction } from "../../chain-confirm.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { GbtCommand } from "../../gbt-command.js";

export interface StakeDepositResult {
  node: string;
  amount: string;
  txHash: string;
  staked: string;
}

export default class StakeDeposit extends GbtCommand {
  static override summary = "Stake GBT for this node (the node key pays and owns the stake).";

  static override description =
    "Approves NodeStaking for the amount when needed, then stakes it for the node's id (its address). Asks for confirmation on a TTY; without one, pass --yes. Exit 7 when the node key holds too little GBT (or ETH for gas).";

  static override examples = [
    { description: "Stake 100 GBT", command: "<%= config.bin %> <%= command.id %> 100" },
    { description: "From a script", command: "<%= config.bin %> <%= command.id %> 250.5 --yes --json" },
  ];

  static override args = {
    amount: Args.string({ description: "GBT to stake (a decimal number).", required: true }),
  };

  static override flags = { ...chainSessionFlags };

  async run(): Promise<StakeDepositResult> {
    const { args, flags } = await this.parse(StakeDeposit);
    const amount = parseGbtAmount(args.amount);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const node = session.client.account.address;
    const balance = await readGbtBalance(session.client, { token: session.deployment.token, account: node });
    await confirmTransaction(`Stake ${formatGbt(amount)} for node ${node} (balance ${formatGbt(balance)})`, {
      yes: flags.yes,
    });
    const { hash } = await stake(session.client, { deployment: session.deployment, amount });
    const after = await readStake(session.client, { deployment: session.deployment, node });
    this.out(`Staked ${formatGbt(amount)} for ${node}: ${formatGbt(after.staked)} active (tx ${hash}).`);
    return { node, amount: amount.toString(), txHash: hash, staked: after.staked.toString() };
  }
}
