import { type RegistryEntry, registryStatuses } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { renderTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";
import { gatewayUrl, gatewayUrlFlag, registryClient } from "../../model-registry-flags.js";

export default class ModelList extends GbtCommand {
  static override summary = "List the models registered with a gateway.";
  static override description =
    "Reads GET /v1/registry/models: every name@version with its publisher, status (pending, approved, delisted), artifacts and size, newest first. Exit codes: 0 ok; 2 usage; 5 gateway unreachable.";
  static override examples = [
    { description: "The local gateway's registry", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Approved versions, as JSON",
      command: "<%= config.bin %> <%= command.id %> --status approved --json",
    },
  ];
  static override flags = {
    ...gatewayUrlFlag,
    status: Flags.string({ description: "Only this status.", options: [...registryStatuses] }),
    name: Flags.string({ description: "Only this model name." }),
  };

  async run(): Promise<RegistryEntry[]> {
    const { flags } = await this.parse(ModelList);
    const client = registryClient(gatewayUrl(flags.gateway), (m) => this.note(m));
    const models = await client.listRegistryModels({
      ...(flags.status ? { status: flags.status as RegistryEntry["status"] } : {}),
      ...(flags.name ? { name: flags.name } : {}),
    });
    this.out(
      models.length === 0
        ? "No model is registered. Publish one with `gbt model publish manifest.yaml`."
        : renderTable(
            ["MODEL", "STATUS", "PUBLISHER", "ARTIFACTS", "SIZE", "CREATED"],
            models.map((m) => [
              `${m.name}@${m.version}`,
              m.status,
              m.publisher,
              String(m.artifacts),
              `${(m.sizeBytes / 1024 / 1024).toFixed(1)} MiB`,
              m.createdAt,
            ]),
          ),
    );
    return models;
  }
}
