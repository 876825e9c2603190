/** The admin's status commands of the model registry (`gbt model approve|delist`): one flow, two actions. */
import type { RegistryModel } from "@gbt/protocol";
import { GbtCommand } from "./gbt-command.js";
import { changeModelStatus, type modelStatusInputs } from "./model-registry-flags.js";

export abstract class ModelStatusCommand extends GbtCommand {
  /** What this command does to the version. */
  protected abstract readonly action: "approve" | "delist";

  async run(): Promise<Omit<RegistryModel, "signed">> {
    // Subclasses declare the statics: oclif's parse spreads the command class, own properties only.
    const { args, flags } = await this.parse(
      this.constructor as unknown as {
        args: typeof modelStatusInputs.args;
        flags: typeof modelStatusInputs.flags;
      },
    );
    const model = await changeModelStatus(
      {
        model: args.model,
        action: this.action,
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
