import { readGbtBalance, readStake } from "@gbt/contracts";
import { formatGbt } from "../../chain-amount.js";
import { chainSessionFlags, openChainSession } from "../../chain-session.js";
import { labelTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";

export interface StakeStatusResult {
  node: string;
  balance: string;
  staked: string;
  unbonding: string;
  /** ISO time the unbonding can be withdrawn; null when nothing unbonds. */
  releaseAt: string | null;
  withdrawable: boolean;
  openSlashes: number;
  unbondingDelaySeconds: number;
}

export default class StakeStatus extends GbtCommand {
  static override summary = "Show this node's stake: active, unbonding (and when it is released), balance.";

  static override examples = [
    { description: "The stake as JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];

  static override flags = {
    "rpc-url": chainSessionFlags["rpc-url"],
    "passphrase-file": chainSessionFlags["passphrase-file"],
  };

  async run(): Promise<StakeStatusResult> {
    const { flags } = await this.parse(StakeStatus);
    const session = await openChainSession({
      rpcUrl: flags["rpc-url"],
      passphraseFile: flags["passphrase-file"],
    });
    const node = session.client.account.address;
    const [status, balance, block] = await Promise.all([
      readStake(session.client, { deployment: session.deployment, node }),
      readGbtBalance(session.client, { token: session.deployment.token, account: node }),
      session.client.request({ method: "eth_getBlockByNumber", params: ["latest", false] }),
    ]);
    const chainNow = BigInt(block?.timestamp ?? 0);
    const result: StakeStatusResult = {
      node,
      balance: balance.toString(),
      staked: status.staked.toString(),
      unbonding: status.unbonding.toString(),
      releaseAt: status.unbonding > 0n ? new Date(Number(status.releaseAt) * 1000).toISOString() : null,
      withdrawable: status.unbonding > 0n && chainNow >= status.releaseAt && status.openSlashes === 0n,
      openSlashes: Number(status.openSlashes),
      unbondingDelaySeconds: Number(status.unbondingDelaySeconds),
    };
    this.out(
      labelTable([
        ["Node", node],
        ["Balance", formatGbt(balance)],
        ["Staked", formatGbt(status.staked)],
        [
          "Unbonding",
          status.unbonding > 0n
            ? `${formatGbt(status.unbonding)} (${result.withdrawable ? "withdrawable now" : `until ${result.releaseAt}`})`
            : "none",
        ],
        ["Open slashes", String(result.openSlashes)],
      ]),
    );
    return result;
  }
}
