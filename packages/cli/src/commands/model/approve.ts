import { modelStatusInputs } from "../../model-registry-flags.js";
import { ModelStatusCommand } from "../../model-status-command.js";

export default class ModelApprove extends ModelStatusCommand {
  static override summary = "Approve a registered model version (gateway admin).";
  static override description =
    "Moves NAME@VERSION from pending to approved: with the gateway's registry.requireApproved on, nodes may then register and serve it. Needs the gateway's admin token (--admin-token-file, GBT_GATEWAY_ADMIN_TOKEN, or the local gateway's). Approving an approved version changes nothing. Exit codes: 0 ok; 2 usage; 4 admin token refused; 5 gateway unreachable; 8 no such version; 9 the version is delisted.";
  static override examples = [
    {
      description: "On the gateway's machine",
      command: "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0 --reason 'reviewed'",
    },
  ];
  // Declared here, not inherited: oclif's parse reads the command class's own properties.
  static override args = modelStatusInputs.args;
  static override flags = modelStatusInputs.flags;
  protected readonly action = "approve";
}
