import type { RegistryModel } from "@gbt/protocol";
import { GbtCommand } from "../../gbt-command.js";
import { changeModelStatus, modelStatusInputs } from "../../model-registry-flags.js";

export default class ModelApprove extends GbtCommand {
  static override summary = "Approve a registered model version (gateway admin).";
  static override description =
    "Moves NAME@VERSION from pending to approved: with the gateway's registry.requireApproved on, nodes may then register and serve it. Needs the gateway's admin token (--admin-token-file, GBT_GATEWAY_ADMIN_TOKEN, or the local gateway's). Approving an approved version changes nothing. Exit codes: 0 ok; 2 usage; 4 admin token refused; 5 gateway unreachable; 8 no such version; 9 the version is delisted.";
  static override examples = [
    {
      description: "On the gateway's machine",
      command: "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0 --reason 'reviewed'",
    },
  ];
  static override args = modelStatusInputs.args;
  static override flags = modelStatusInputs.flags;

  async run(): Promise<Omit<RegistryModel, "signed">> {
    const { args, flags } = await this.parse(ModelApprove);
    const model = await changeModelStatus(
      {
        model: args.model,
        action: "approve",
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
