import { claimNode, DEFAULT_NODE_URL, signNodeClaim } from "@gbt/node";
import { GbtError, type SignedObject, schemas } from "@gbt/protocol";
import { Args, Flags } from "@oclif/core";
import type { Address } from "viem";
import { GbtCommand } from "../../gbt-command.js";
import { ownerAccount } from "../../owner-key.js";

type ClaimResult =
  | { owner: Address; node: Address; owners: Address[]; chainId: number; nodeUrl: string }
  | SignedObject<"NodeClaim">;

export default class OwnerClaim extends GbtCommand {
  static override summary = "Claim an unclaimed node with your owner key.";

  static override description =
    `A new node with no owner shows a claim code (gbt serve prints it; so do \`gbt status\` and the node's setup page at http://127.0.0.1:8787/setup). This signs a NodeClaim with the owner key (bound to the node, its code and the chain, valid 10 minutes), after checking that the node at --node shows that code, and sends it; the node records you as its owner and leaves setup mode. Prints the owner and the node (with --json: {owner, node, owners, chainId, nodeUrl}).

The node answers setup requests from its own machine only (or its LAN with \`gbt serve --setup-host\`). From elsewhere, sign with --print --node-address 0x… --chain-id N and paste the JSON it prints into the node's setup page: no node is contacted then.`;

  static override examples = [
    {
      description: "On the node itself",
      command: "<%= config.bin %> <%= command.id %> GBT-N7K4 --key-file owner.key",
    },
    {
      description: "A claim to paste into the node's setup page",
      command:
        "<%= config.bin %> <%= command.id %> GBT-N7K4 --key-file owner.key --print --node-address 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC --chain-id 31337",
    },
  ];

  static override args = {
    code: Args.string({ description: "The claim code the node shows (GBT-XXXX).", required: true }),
  };

  static override flags = {
    "key-file": Flags.string({
      helpValue: "FILE",
      description: "The owner key (a gbt keystore or a hex key file; else GBT_OWNER_KEY).",
    }),
    "passphrase-file": Flags.string({
      helpValue: "FILE",
      description:
        "File holding the passphrase of an encrypted keystore (else GBT_PASSPHRASE, else a prompt on a TTY).",
    }),
    node: Flags.string({
      helpValue: "URL",
      description: `The node's URL (default ${DEFAULT_NODE_URL}).`,
      exclusive: ["print"],
    }),
    print: Flags.boolean({
      description:
        "Print the signed claim (JSON) instead of sending it; needs --node-address and --chain-id.",
      default: false,
    }),
    "node-address": Flags.string({
      helpValue: "0x…",
      description: "With --print: the node's address (its setup page shows it).",
      dependsOn: ["print"],
    }),
    "chain-id": Flags.integer({
      helpValue: "N",
      description: "With --print: the node's chain id (its setup page shows it).",
      dependsOn: ["print"],
      min: 1,
    }),
  };

  async run(): Promise<ClaimResult> {
    const { args, flags } = await this.parse(OwnerClaim);
    if (flags.print && (flags["node-address"] === undefined || flags["chain-id"] === undefined)) {
      throw new GbtError("MISSING_INPUT", "--print needs the node's address and chain id.", {
        hint: "Pass --node-address 0x… and --chain-id N (the node's setup page shows both).",
      });
    }
    const account = await ownerAccount(flags["key-file"], flags["passphrase-file"], {
      promptForPassphrase: true,
    });
    if (flags.print) {
      const node = schemas.address.safeParse(flags["node-address"]);
      if (!node.success) {
        throw new GbtError("INVALID_ADDRESS", `--node-address ${flags["node-address"]} is not an address.`, {
          hint: "Copy the node address from its setup page (0x and 40 hex digits).",
        });
      }
      const signed = await signNodeClaim(account, {
        node: node.data as Address,
        code: args.code,
        chainId: flags["chain-id"] as number,
      });
      this.out(JSON.stringify(signed, null, 2));
      this.note("Paste this into the node's setup page within 10 minutes.");
      return signed;
    }
    const claimed = await claimNode({ account, code: args.code, nodeUrl: flags.node ?? DEFAULT_NODE_URL });
    this.out(`Claimed node ${claimed.node} for owner ${claimed.owner}.`);
    this.note(`Next: \`gbt operator --key-file ${flags["key-file"] ?? "owner.key"}\` to manage it.`);
    return claimed;
  }
}
