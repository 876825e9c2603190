import { type AccountInfo, type ApiKeyInfo, formatCredits, withGatewayAccounts } from "@gbt/gateway";
import { renderTable } from "../../../format.js";
import { gatewayPathFlags, gatewayPaths } from "../../../gateway-paths.js";
import { GbtCommand } from "../../../gbt-command.js";

export default class GatewayKeysList extends GbtCommand {
  static override summary = "List consumer accounts with their balances and API keys (never the secrets).";
  static override examples = [
    { description: "Accounts and keys as a table", command: "<%= config.bin %> <%= command.id %>" },
    { description: "As JSON", command: "<%= config.bin %> <%= command.id %> --json" },
  ];
  static override flags = { ...gatewayPathFlags };

  async run(): Promise<{ accounts: AccountInfo[]; keys: ApiKeyInfo[] }> {
    const { flags } = await this.parse(GatewayKeysList);
    const result = withGatewayAccounts(gatewayPaths(flags).dataDir, (accounts) => ({
      accounts: accounts.listAccounts(),
      keys: accounts.listApiKeys(),
    }));
    const balance = new Map(result.accounts.map((a) => [a.id, a]));
    this.out(
      result.keys.length === 0
        ? "No keys yet. Create one with `gbt gateway keys create NAME`."
        : renderTable(
            ["ACCOUNT", "NAME", "BALANCE", "KEY", "PREFIX", "CREATED", "STATUS"],
            result.keys.map((k) => [
              k.accountId,
              balance.get(k.accountId)?.name ?? "",
              formatCredits(balance.get(k.accountId)?.balanceMicro ?? 0),
              k.name,
              `${k.prefix}…`,
              k.createdAt,
              k.revokedAt ? `revoked ${k.revokedAt}` : "active",
            ]),
          ),
    );
    return result;
  }
}
