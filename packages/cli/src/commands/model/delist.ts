import type { RegistryModel } from "@gbt/protocol";
import { GbtCommand } from "../../gbt-command.js";
import { changeModelStatus, modelStatusInputs } from "../../model-registry-flags.js";

export default class ModelDelist extends GbtCommand {
  static override summary = "Delist a registered model version (gateway admin).";
  static override description =
    "Moves NAME@VERSION (pending or approved) to delisted: under registry.requireApproved, nodes stop being routed requests for it at their next heartbeat. A delisted version stays delisted; publish a new version. Needs the gateway's admin token (--admin-token-file, GBT_GATEWAY_ADMIN_TOKEN, or the local gateway's). Exit codes: 0 ok; 2 usage; 4 admin token refused; 5 gateway unreachable; 8 no such version.";
  static override examples = [
    {
      description: "On the gateway's machine",
      command: "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0 --reason 'license withdrawn'",
    },
  ];
  static override args = modelStatusInputs.args;
  static override flags = modelStatusInputs.flags;

  async run(): Promise<Omit<RegistryModel, "signed">> {
    const { args, flags } = await this.parse(ModelDelist);
    const model = await changeModelStatus(
      {
        model: args.model,
        action: "delist",
        gateway: flags.gateway,
        adminTokenFile: flags["admin-token-file"],
        reason: flags.reason,
      },
      (message) => this.note(message),
    );
    this.out(`${model.name}@${model.version} is ${model.status}`);
    return model;
  }
}
