import { type CreatedApiKey, withNodeApiKeys } from "@gbt/node";
import { Args } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";

export default class KeysCreate extends GbtCommand {
  static override summary = "Create a local API key for `gbt serve`.";
  static override description =
    "Keys are random (gbt_sk_…), shown once, and stored only as their sha256 in the node database. A node serving on a non-loopback host requires one on every request (Authorization: Bearer …).";
  static override examples = [
    { description: "Create a key for a laptop", command: "<%= config.bin %> <%= command.id %> laptop" },
    {
      description: "Create a key and keep only the secret",
      command: "<%= config.bin %> <%= command.id %> ci --json | jq -r .key",
    },
  ];
  static override args = {
    name: Args.string({ description: "A name to recognise the key by.", required: true }),
  };

  async run(): Promise<CreatedApiKey> {
    const { args } = await this.parse(KeysCreate);
    const created = withNodeApiKeys((keys) => keys.create(args.name));
    this.out(`Created key ${created.id} (${created.name}). It is shown only once:\n\n  ${created.key}\n`);
    return created;
  }
}
