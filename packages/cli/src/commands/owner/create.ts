import { Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { createOwnerKey, DEFAULT_OWNER_KEY_FILE, type OwnerKeyFile } from "../../owner-key.js";

export default class OwnerCreate extends GbtCommand {
  static override summary = "Create an owner (admin) key and print its address.";

  static override description =
    `Makes a new secp256k1 key in a gbt keystore (mode 0600), encrypted with scrypt + AES-256-GCM when a passphrase is given (--passphrase-file, GBT_PASSPHRASE, or a hidden prompt on a TTY, typed twice); without one the key is stored unencrypted and the command says so. An existing file is never replaced without --force.

The address goes to stdout (with --json: {address, path, encrypted}). Record it on each node with \`gbt setup --owner ADDRESS\`, then sign jobs with \`gbt job create … --key-file FILE\` or \`gbt operator --key-file FILE\`. The key itself is never printed.`;

  static override examples = [
    {
      description: "An owner key in ./owner.key, then allow it on this node",
      command: "<%= config.bin %> <%= command.id %> && gbt setup --owner $(gbt owner show owner.key)",
    },
    {
      description: "An encrypted key, for scripts",
      command:
        "<%= config.bin %> <%= command.id %> --out ~/keys/owner.key --passphrase-file ./pass.txt --json",
    },
  ];

  static override flags = {
    out: Flags.string({
      helpValue: "FILE",
      description: `Where to write the keystore (default: ${DEFAULT_OWNER_KEY_FILE} in the current directory).`,
    }),
    "passphrase-file": Flags.string({
      helpValue: "FILE",
      description:
        "File holding the passphrase that encrypts the key (else GBT_PASSPHRASE, else a prompt on a TTY).",
    }),
    force: Flags.boolean({
      description: "Replace an existing file at --out (its key is lost unless kept elsewhere).",
      default: false,
    }),
  };

  async run(): Promise<OwnerKeyFile> {
    const { flags } = await this.parse(OwnerCreate);
    const created = await createOwnerKey({
      out: flags.out,
      force: flags.force,
      passphraseFile: flags["passphrase-file"],
      promptForPassphrase: true,
    });
    this.out(created.address);
    this.note(
      created.encrypted
        ? `Wrote the owner key to ${created.path} (encrypted, mode 0600).`
        : `Wrote the owner key to ${created.path} UNENCRYPTED (mode 0600): whoever can read it can sign jobs for your nodes. To encrypt it, create it with --passphrase-file FILE or GBT_PASSPHRASE.`,
    );
    this.note(
      `Next: \`gbt setup --owner ${created.address}\` on each node, then \`gbt operator --key-file ${created.path}\`.`,
    );
    return created;
  }
}
