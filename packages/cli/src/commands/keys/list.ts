import { type ApiKeyInfo, withNodeApiKeys } from "@gbt/node";
import { renderTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";

export default class KeysList extends GbtCommand {
  static override summary = "List local API keys (never their secrets).";
  static override examples = [
    { description: "Table of keys", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Active keys as JSON",
      command: "<%= config.bin %> <%= command.id %> --json | jq '.[] | select(.revokedAt == null)'",
    },
  ];

  async run(): Promise<ApiKeyInfo[]> {
    await this.parse(KeysList);
    const keys = withNodeApiKeys((store) => store.list());
    if (keys.length === 0) {
      this.out("No API keys. Create one with `gbt keys create NAME`.");
      return keys;
    }
    this.out(
      renderTable(
        ["ID", "NAME", "PREFIX", "CREATED", "STATUS"],
        keys.map((k) => [
          k.id,
          k.name,
          `${k.prefix}…`,
          k.createdAt,
          k.revokedAt ? `revoked ${k.revokedAt}` : "active",
        ]),
      ),
    );
    return keys;
  }
}
