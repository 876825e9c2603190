import {
  type AccountInfo,
  type CreatedApiKey,
  createGatewayAccount,
  formatCredits,
  withGatewayAccounts,
} from "@gbt/gateway";
import { Args, Flags } from "@oclif/core";
import { gatewayPathFlags, gatewayPaths } from "../../../gateway-paths.js";
import { GbtCommand } from "../../../gbt-command.js";

export default class GatewayKeysCreate extends GbtCommand {
  static override summary =
    "Create a consumer account (5.00 credits) and its API key, or another key for an account.";
  static override description =
    "Keys are random (gbt_gk_…), shown once, and stored only as their sha256 in the gateway database; a running gateway accepts a new key within a second. Every new account starts with 5.00 credits, granted through the ledger.";
  static override examples = [
    {
      description: "A new account named alice with its first key",
      command: "<%= config.bin %> <%= command.id %> alice",
    },
    {
      description: "Another key for an existing account, keeping only the secret",
      command: "<%= config.bin %> <%= command.id %> ci --account acct_… --json | jq -r .key.key",
    },
  ];
  static override args = {
    name: Args.string({
      description: "Name of the new account (or of the key, with --account).",
      required: true,
    }),
  };
  static override flags = {
    account: Flags.string({
      description: "Add a key to this existing account id instead of creating an account.",
    }),
    ...gatewayPathFlags,
  };

  async run(): Promise<{ account: AccountInfo; key: CreatedApiKey }> {
    const { args, flags } = await this.parse(GatewayKeysCreate);
    const { dataDir } = gatewayPaths(flags);
    const created =
      flags.account === undefined
        ? createGatewayAccount(dataDir, args.name)
        : withGatewayAccounts(dataDir, (accounts) => ({
            account: accounts.getAccount(flags.account as string),
            key: accounts.createApiKey(flags.account as string, args.name),
          }));
    this.out(
      `Account ${created.account.id} (${created.account.name}), balance ${formatCredits(created.account.balanceMicro)} credits.\n` +
        `Key ${created.key.id} is shown only once:\n\n  ${created.key.key}\n`,
    );
    return created;
  }
}
