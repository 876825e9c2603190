import { detectBackends, type NodeProfile, nodeStatus, probeHardware, resolvePaths } from "@gbt/node";
import { GbtCommand } from "../gbt-command.js";
import { renderProfile } from "../render-profile.js";

export default class Status extends GbtCommand {
  static override summary = "Show this node's identity, owners, mode, backend and hardware.";

  static override description =
    "Reads the config and keystore written by `gbt setup` (nothing is changed) and probes the hardware and backends afresh. With --json, prints the same node profile document as `gbt setup --json`.";

  static override examples = [
    { description: "Human summary", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "The node address, for scripts",
      command: "<%= config.bin %> <%= command.id %> --json | jq -r .address",
    },
  ];

  async run(): Promise<NodeProfile> {
    await this.parse(Status);
    const paths = resolvePaths();
    const profile = await nodeStatus({
      paths,
      probeHardware: () => probeHardware({ dataDir: paths.dataDir }),
      detectBackends: () => detectBackends({}),
    });
    this.out(renderProfile(profile));
    return profile;
  }
}
