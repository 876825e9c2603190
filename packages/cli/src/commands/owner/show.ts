import { Args, Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { describeOwnerKey, type OwnerKeyFile } from "../../owner-key.js";
import { passphraseFromFlags } from "../../terminal-input.js";

export default class OwnerShow extends GbtCommand {
  static override summary = "Print the address of an owner key file.";

  static override description =
    "Reads a gbt keystore (as `gbt owner create` writes it; its address is stored in clear, so no passphrase is needed) or a file holding a hex private key, and prints the address (with --json: {address, path, encrypted}). With --passphrase-file, an encrypted keystore is also unlocked, to check the passphrase: a wrong one fails with WRONG_PASSPHRASE (exit 4). The key itself is never printed.";

  static override examples = [
    {
      description: "The address to give `gbt setup --owner`",
      command: "<%= config.bin %> <%= command.id %> owner.key",
    },
    {
      description: "Check that a passphrase unlocks the key",
      command: "<%= config.bin %> <%= command.id %> owner.key --passphrase-file ./pass.txt",
    },
  ];

  static override args = {
    file: Args.string({ description: "The owner key file (keystore or hex key).", required: true }),
  };

  static override flags = {
    "passphrase-file": Flags.string({
      helpValue: "FILE",
      description: "Also unlock an encrypted keystore with the passphrase in FILE, to check it.",
    }),
  };

  async run(): Promise<OwnerKeyFile> {
    const { args, flags } = await this.parse(OwnerShow);
    const passphrase = flags["passphrase-file"]
      ? await passphraseFromFlags({ passphraseFile: flags["passphrase-file"] })
      : undefined;
    const shown = await describeOwnerKey(args.file, { passphrase });
    this.out(shown.address);
    return shown;
  }
}
