/** The admin's status commands of the model registry (`gbt model approve|delist`): one flow, two actions. */
import { parseModelRef, type RegistryModel } from "@gbt/protocol";
import { GbtCommand } from "./gbt-command.js";
import { adminToken, gatewayUrl, type modelStatusInputs, registryClient } from "./model-registry-flags.js";

export abstract class ModelStatusCommand extends GbtCommand {
  /** What this command does to the version. */
  protected abstract readonly action: "approve" | "delist";

  /** Moves the version to its new status with the admin token; the result leaves out the signed document. */
  async run(): Promise<Omit<RegistryModel, "signed">> {
    // Subclasses declare the statics: oclif's parse spreads the command class, own properties only.
    const { args, flags } = await this.parse(
      this.constructor as unknown as {
        args: typeof modelStatusInputs.args;
        flags: typeof modelStatusInputs.flags;
      },
    );
    const { name, version } = parseModelRef(args.model);
    const token = await adminToken(flags["admin-token-file"]);
    const client = registryClient(gatewayUrl(flags.gateway), (message) => this.note(message), token);
    const { signed: _signed, ...model } = await client.setRegistryModelStatus({
      name,
      version,
      action: this.action,
      reason: flags.reason,
    });
    this.out(`${model.name}@${model.version} is ${model.status}`);
    return model;
  }
}
