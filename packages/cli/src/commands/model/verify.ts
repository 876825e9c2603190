import { GbtError, schemas } from "@gbt/protocol";
import { type VerifyModelResult, verifyModel } from "@gbt/publish";
import { Args, Flags } from "@oclif/core";
import type { Address } from "viem";
import { GbtCommand } from "../../gbt-command.js";
import { gatewayUrl, gatewayUrlFlag, hashingProgress, registryClient } from "../../model-registry-flags.js";

export default class ModelVerify extends GbtCommand {
  static override summary = "Check a signed model manifest and re-hash its artifacts.";

  static override description =
    `TARGET is a signed manifest file (as written by \`gbt model publish --out\` or --dry-run), a plain manifest file (its signed version is fetched from the gateway by name@version and must list the same artifacts), or NAME@VERSION (fetched from the gateway; artifacts are looked up under --dir). The EIP-712 signature and the document's hash are checked, then every local artifact is re-hashed by streaming and compared with the signed sha256 and size; remote (URI) artifacts are listed, not fetched.

Exit codes: 0 valid; 2 usage; 4 signature invalid, wrong chain, or not signed by --publisher (SIGNATURE_INVALID, PAYLOAD_HASH_MISMATCH, UNKNOWN_SIGNER, WRONG_CHAIN); 5 gateway unreachable; 6 an artifact differs (ARTIFACT_MISMATCH) or the manifest is invalid (MANIFEST_INVALID); 8 file, artifact or model not found.`;

  static override examples = [
    {
      description: "A signed manifest file",
      command: "<%= config.bin %> <%= command.id %> model.signed.json",
    },
    {
      description: "A registered version, artifacts in ./dist, pinned to its publisher",
      command:
        "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0 --dir dist --publisher 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    },
  ];

  static override args = {
    target: Args.string({ description: "Manifest file (signed or not) or NAME@VERSION.", required: true }),
  };

  static override flags = {
    ...gatewayUrlFlag,
    dir: Flags.string({
      helpValue: "DIR",
      description: "Where the artifacts are (default: the manifest's directory, or . for NAME@VERSION).",
    }),
    publisher: Flags.string({ helpValue: "0x…", description: "Require this publisher's signature." }),
    "chain-id": Flags.integer({
      helpValue: "N",
      description: "Chain the signature must be for (default: the gateway's, or the file's own).",
      min: 1,
    }),
  };

  async run(): Promise<VerifyModelResult> {
    const { args, flags } = await this.parse(ModelVerify);
    let publisher: Address | undefined;
    if (flags.publisher !== undefined) {
      const parsed = schemas.address.safeParse(flags.publisher);
      if (!parsed.success) {
        throw new GbtError("INVALID_ADDRESS", `--publisher ${flags.publisher} is not an address.`, {
          hint: "Pass 0x followed by 40 hex characters.",
        });
      }
      publisher = parsed.data as Address;
    }
    const note = (message: string) => this.note(message);
    const result = await verifyModel({
      target: args.target,
      registry: registryClient(gatewayUrl(flags.gateway), note),
      ...(flags.dir ? { baseDir: flags.dir } : {}),
      ...(publisher ? { publisher } : {}),
      ...(flags["chain-id"] !== undefined ? { chainId: flags["chain-id"] } : {}),
      onProgress: hashingProgress(note),
    });
    const lines = result.artifacts.map(
      (a) =>
        `  ${a.status === "verified" ? "ok     " : "remote "} ${a.path ?? a.uri}  ${a.sha256.slice(0, 16)}…  ${a.size} bytes`,
    );
    this.out(
      `Verified ${result.ref}: signed by ${result.publisher} (chain ${result.chainId})${result.status ? `, registry status ${result.status}` : ""}\n${lines.join("\n")}`,
    );
    return result;
  }
}
