import { type ApiKeyInfo, withNodeApiKeys } from "@gbt/node";
import { Args } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";

export default class KeysRevoke extends GbtCommand {
  static override summary = "Revoke a local API key; it stops working on the next request.";
  static override examples = [
    { description: "Revoke by id", command: "<%= config.bin %> <%= command.id %> 3f2c7a7e-…" },
    {
      description: "Revoke by the prefix shown in `gbt keys list`",
      command: "<%= config.bin %> <%= command.id %> gbt_sk_AbCd",
    },
  ];
  static override args = { key: Args.string({ description: "The key's id or prefix.", required: true }) };

  async run(): Promise<ApiKeyInfo> {
    const { args } = await this.parse(KeysRevoke);
    const revoked = withNodeApiKeys((keys) => keys.revoke(args.key));
    this.out(`Revoked ${revoked.id} (${revoked.name}).`);
    return revoked;
  }
}
