import { modelStatusInputs } from "../../model-registry-flags.js";
import { ModelStatusCommand } from "../../model-status-command.js";

export default class ModelDelist extends ModelStatusCommand {
  static override summary = "Delist a registered model version (gateway admin).";
  static override description =
    "Moves NAME@VERSION (pending or approved) to delisted: under registry.requireApproved, nodes stop being routed requests for it at their next heartbeat. A delisted version stays delisted; publish a new version. Needs the gateway's admin token (--admin-token-file, GBT_GATEWAY_ADMIN_TOKEN, or the local gateway's). Exit codes: 0 ok; 2 usage; 4 admin token refused; 5 gateway unreachable; 8 no such version.";
  static override examples = [
    {
      description: "On the gateway's machine",
      command: "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0 --reason 'license withdrawn'",
    },
  ];
  // Declared here, not inherited: oclif's parse reads the command class's own properties.
  static override args = modelStatusInputs.args;
  static override flags = modelStatusInputs.flags;
  protected readonly action = "delist";
}
