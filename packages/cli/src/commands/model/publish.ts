import { writeFile } from "node:fs/promises";
import type { CommittedManifest } from "@gbt/contracts";
import { gatewayPaths, type RegistryStatus, type SignedModelManifest } from "@gbt/protocol";
import { publishModel } from "@gbt/publish";
import { Args, Flags } from "@oclif/core";
import { parseGbtAmount } from "../../chain-amount.js";
import { GbtCommand } from "../../gbt-command.js";
import { commitManifestOnChain } from "../../model-onchain.js";
import { publisherAccount } from "../../model-publisher-key.js";
import { gatewayUrl, gatewayUrlFlag, hashingProgress, registryClient } from "../../model-registry-flags.js";

interface PublishResult {
  ref: string;
  outcome: "dry-run" | "created" | "exists";
  status: RegistryStatus | null;
  gateway: string | null;
  publisher: string;
  manifestHash: string;
  signed: SignedModelManifest;
  /** The on-chain commitment (--onchain). */
  onchain: CommittedManifest | null;
}

export default class ModelPublish extends GbtCommand {
  static override summary = "Hash, sign and register a model manifest (JSON or YAML) with a gateway.";

  static override description =
    `Reads the manifest, hashes every local artifact by streaming it (progress on stderr; memory stays flat on multi-GB files), fills in each missing sha256 and size or checks the ones given, validates the whole manifest (every problem is named by its JSON path), signs it (EIP-712 ModelManifest) with the publisher key for the gateway's chain, and submits it to the gateway's model registry. Artifact paths are relative to the manifest's directory and may not leave it.

The key comes from GBT_PUBLISHER_KEY (a hex private key: the CI way) or --key-file (a hex key or a gbt keystore, unlocked with --passphrase-file or GBT_PASSPHRASE); it is never printed. Network errors and 5xx answers are retried with backoff; the manifest hash is the idempotency key, so a rerun is safe: the same content answers "exists", other content under the same name@version is refused (versions are immutable). A new version starts "pending" until a gateway admin approves it.

A manifest without createdAt gets SOURCE_DATE_EPOCH (reproducible builds) or the current time; rerunning the publish of an already registered version reuses the registered createdAt, so the rerun is recognised as the same content.

--dry-run signs without contacting a gateway and prints the signed manifest on stdout (for the chain of --chain-id, default 31337); --out FILE also writes it to a file for \`gbt model verify FILE\`. Never prompts without a TTY.

Exit codes: 0 published, already published, or signed (dry run); 2 usage; 3 keystore unreadable; 4 key or signature refused (SIGNER_MISMATCH, WRONG_PASSPHRASE, SIGNATURE_INVALID, WRONG_CHAIN); 5 gateway unreachable after retries; 6 manifest invalid (MANIFEST_INVALID), artifact differs from a given sha256/size (ARTIFACT_MISMATCH) or bad key (INVALID_KEY); 8 manifest or artifact file missing; 9 name@version already registered with other content, or its hash committed on chain by another publisher (CONFLICT); 7 too little GBT for --stake (INSUFFICIENT_FUNDS); 11 I/O error.

--onchain also commits the manifest hash, with the registry URL of this version, to the ModelRegistry contract named in chain.json (written by \`gbt chain dev\` and \`gbt up\`), staking --stake GBT (default 100, the dev chain's minimum) from the publisher key, which pays the gas. A rerun finds its commitment and sends nothing.`;

  static override examples = [
    {
      description: "In CI: key from a secret, gateway from the environment",
      command:
        "GBT_PUBLISHER_KEY=$PUBLISHER_KEY GBT_GATEWAY_URL=https://gw.example <%= config.bin %> <%= command.id %> model.yaml --json",
    },
    {
      description: "Sign only, and keep the signed manifest",
      command:
        "<%= config.bin %> <%= command.id %> model.yaml --dry-run --key-file publisher.key --out model.signed.json",
    },
  ];

  static override args = {
    manifest: Args.string({ description: "The manifest file (JSON or YAML).", required: true }),
  };

  static override flags = {
    ...gatewayUrlFlag,
    "key-file": Flags.string({
      helpValue: "PATH",
      description: "Publisher key: a hex private key or a gbt keystore (default: GBT_PUBLISHER_KEY).",
    }),
    "passphrase-file": Flags.string({
      helpValue: "PATH",
      description: "Passphrase of an encrypted keystore (else GBT_PASSPHRASE).",
    }),
    "dry-run": Flags.boolean({ description: "Sign and print the signed manifest; contact no gateway." }),
    "chain-id": Flags.integer({
      helpValue: "N",
      description: "Chain of the signature (default: the gateway's; 31337 on a dry run).",
      min: 1,
    }),
    out: Flags.string({ helpValue: "FILE", description: "Also write the signed manifest (JSON) to FILE." }),
    onchain: Flags.boolean({
      description:
        "Also commit the manifest hash and its registry URI to the ModelRegistry contract of chain.json (`gbt chain dev`, `gbt up`), staking --stake GBT from the publisher key.",
      exclusive: ["dry-run"],
    }),
    stake: Flags.string({
      helpValue: "GBT",
      description: "Publisher stake for --onchain, in GBT (at least the registry's minimum).",
      default: "100",
    }),
    "rpc-url": Flags.string({
      description: "Chain RPC URL for --onchain (default: chain.json's).",
      dependsOn: ["onchain"],
    }),
  };

  async run(): Promise<PublishResult> {
    const { args, flags } = await this.parse(ModelPublish);
    const note = (message: string) => this.note(message);
    // The key is read first: a CI job without its secret fails before hashing gigabytes.
    const account = await publisherAccount({
      keyFile: flags["key-file"],
      passphraseFile: flags["passphrase-file"],
    });
    const url = gatewayUrl(flags.gateway);
    const stake = flags.onchain ? parseGbtAmount(flags.stake, "--stake") : 0n;
    const result = await publishModel({
      manifestPath: args.manifest,
      account,
      dryRun: flags["dry-run"],
      ...(flags["dry-run"] ? {} : { registry: registryClient(url, note) }),
      ...(flags["chain-id"] !== undefined ? { chainId: flags["chain-id"] } : {}),
      onProgress: hashingProgress(note),
      ...(sourceDateEpoch() !== undefined ? { now: () => (sourceDateEpoch() as number) * 1000 } : {}),
    });
    if (flags.out) await writeFile(flags.out, `${JSON.stringify(result.signed, null, 2)}\n`);
    const output: PublishResult = {
      ref: result.ref,
      outcome: result.outcome,
      status: result.status,
      gateway: result.gatewayUrl,
      publisher: result.signed.message.publisher,
      manifestHash: result.signed.message.manifestHash,
      signed: result.signed,
      onchain: null,
    };
    if (flags.onchain && result.gatewayUrl !== null) {
      note(`committing ${result.ref} on chain…`);
      const [name, version] = [result.signed.payload.name, result.signed.payload.version];
      output.onchain = await commitManifestOnChain({
        account,
        manifestHash: result.signed.message.manifestHash,
        uri: `${result.gatewayUrl.replace(/\/+$/, "")}${gatewayPaths.registryModel(name, version)}`,
        stake,
        rpcUrl: flags["rpc-url"],
      });
    }
    if (result.outcome === "dry-run") {
      this.out(JSON.stringify(result.signed, null, 2));
    } else {
      this.out(
        `${result.outcome === "created" ? "Published" : "Already published (same content)"} ${result.ref} to ${result.gatewayUrl}\n` +
          `  status        ${result.status}${result.status === "pending" ? " (an admin approves it: gbt model approve)" : ""}\n` +
          `  publisher     ${output.publisher}\n  manifestHash  ${output.manifestHash}` +
          (output.onchain
            ? `\n  on chain      ${output.onchain.status} in ModelRegistry ${output.onchain.registry} (chain ${output.onchain.chainId}, stake ${output.onchain.stake} GBT${output.onchain.transaction ? `, tx ${output.onchain.transaction}` : ""})`
            : ""),
      );
    }
    return output;
  }
}

/** SOURCE_DATE_EPOCH (seconds), the reproducible-builds convention, when set to an integer. */
function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.SOURCE_DATE_EPOCH;
  return value !== undefined && /^\d{1,12}$/.test(value) ? Number(value) : undefined;
}
