import { existsSync } from "node:fs";
import { detectBackends, probeHardware, resolvePaths, type SetupResult, setupNode } from "@gbt/node";
import { parsePrivateKey } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { GbtCommand } from "../gbt-command.js";
import { gpuFlags, gpuOptions } from "../gpu-flags.js";
import { renderProfile } from "../render-profile.js";
import { ask, isInteractive, passphraseFromFlags, readSecretFile } from "../terminal-input.js";

export default class Setup extends GbtCommand {
  static override summary =
    "Create this node's identity, detect hardware and backends, and write its config.";

  static override description =
    `Creates the node key (secp256k1) in a keystore with mode 0600, encrypted with scrypt + AES-256-GCM when a passphrase is given (--passphrase-file, GBT_PASSPHRASE, or a prompt on a TTY). Records the owner addresses allowed to sign jobs for this node, probes the hardware, says which GPU and how much VRAM the embedded backend will use (--gpu; or why it runs on the CPU: an explicit --gpu cuda|vulkan|metal that cannot run here fails with exit 12 and changes nothing), detects inference backends (Ollama, OpenAI-compatible servers on their usual ports; the embedded llama.cpp backend is always available) and writes the config.

Re-running is safe: an existing identity is kept (never replaced without --force), owners accumulate, and nothing on disk changes when nothing new is asked. Without a TTY (or with --yes) it never prompts.

Files live under $XDG_CONFIG_HOME/gbt and $XDG_DATA_HOME/gbt, or $GBT_HOME/{config,data} when GBT_HOME is set.`;

  static override examples = [
    {
      description: "Set up with defaults, no questions",
      command: "<%= config.bin %> <%= command.id %> --yes",
    },
    {
      description: "Allow an owner key to sign jobs and encrypt the node key",
      command:
        "<%= config.bin %> <%= command.id %> --yes --owner 0x8ba1f109551bD432803012645Ac136ddd64DBA72 --passphrase-file ./pass.txt",
    },
    {
      description: "CI: import the node key from the environment, print the profile as JSON",
      command: "GBT_NODE_KEY=$NODE_KEY <%= config.bin %> <%= command.id %> --yes --json",
    },
    {
      description: "Use a local Ollama server",
      command: "<%= config.bin %> <%= command.id %> --yes --backend ollama",
    },
    {
      description: "Require CUDA (an error, exit 12, when it cannot run here)",
      command: "<%= config.bin %> <%= command.id %> --yes --gpu cuda",
    },
    {
      description: "A cloud-account node: an OpenAI-compatible API, its key stored encrypted",
      command:
        "<%= config.bin %> <%= command.id %> --yes --backend openai --backend-url https://api.example.com/v1 --backend-api-key-file ./api-key.txt --passphrase-file ./pass.txt",
    },
  ];

  static override flags = {
    yes: Flags.boolean({ char: "y", description: "Accept defaults; never prompt." }),
    owner: Flags.string({
      description: "Owner address allowed to sign jobs for this node (repeatable).",
      multiple: true,
      default: [],
    }),
    "passphrase-file": Flags.string({
      description: "File holding the passphrase that encrypts the node key (else GBT_PASSPHRASE).",
    }),
    "import-key-file": Flags.string({
      description: "File holding a hex private key to use as the node key (else GBT_NODE_KEY).",
    }),
    backend: Flags.string({
      description: "Inference backend. auto keeps the current one, or the embedded backend on a new node.",
      options: ["auto", "embedded", "ollama", "openai"],
    }),
    "backend-url": Flags.string({
      description: "URL of the Ollama or OpenAI-compatible server (with --backend ollama|openai).",
    }),
    "backend-api-key-file": Flags.string({
      description:
        "File holding the API key of the OpenAI-compatible server (with --backend openai): stored in the config dir, encrypted with the node's passphrase (mode 0600; unencrypted, and said so, without one). Makes this a cloud-account node.",
    }),
    model: Flags.string({
      description: "Default model: a GGUF path (embedded), an Ollama tag, or a server model id.",
    }),
    ...gpuFlags,
    mode: Flags.string({
      description:
        "local (default: this machine, and its owner's own gateway), managed (accept owners' signed jobs) or network (offer capacity to the open pool within network.schedule and limits; needs an owner and the gateway's minimum stake).",
      options: ["local", "managed", "network"],
    }),
    force: Flags.boolean({
      description: "Replace the existing identity and rewrite the config from these flags.",
    }),
  };

  async run(): Promise<SetupResult["profile"] & { changes: string[]; warnings: string[] }> {
    const { flags } = await this.parse(Setup);
    const paths = resolvePaths();
    // Questions only on a TTY, and only for a node that has no identity yet: re-running asks nothing.
    const interactive = !flags.yes && isInteractive() && (flags.force || !existsSync(paths.nodeKeystore));

    let passphrase = await passphraseFromFlags({ passphraseFile: flags["passphrase-file"] });
    if (passphrase === undefined && interactive) {
      const answer = await ask("Passphrase to encrypt the node key (empty: store unencrypted, mode 0600)", {
        hidden: true,
      });
      if (answer) passphrase = answer;
    }
    const keyText = flags["import-key-file"]
      ? await readSecretFile(flags["import-key-file"], "private key")
      : process.env.GBT_NODE_KEY || undefined;
    const importKey = keyText
      ? parsePrivateKey(
          keyText,
          flags["import-key-file"] ? `The key file ${flags["import-key-file"]}` : "GBT_NODE_KEY",
        )
      : undefined;
    const owners = [...flags.owner];
    if (owners.length === 0 && interactive) {
      const answer = await ask("Owner address allowed to sign jobs (empty: none yet)");
      if (answer) owners.push(answer);
    }

    const result = await setupNode({
      paths,
      owners,
      ...(passphrase !== undefined ? { passphrase } : {}),
      ...(importKey ? { importKey } : {}),
      ...(flags.backend ? { backend: flags.backend as "auto" } : {}),
      ...(flags["backend-url"] ? { backendUrl: flags["backend-url"] } : {}),
      ...(flags.model ? { model: flags.model } : {}),
      ...gpuOptions(flags),
      ...(flags["backend-api-key-file"] ? { backendApiKeyFile: flags["backend-api-key-file"] } : {}),
      ...(flags.mode ? { mode: flags.mode as "local" } : {}),
      force: flags.force,
      probeHardware: () => probeHardware({ dataDir: paths.dataDir }),
      detectBackends: () => detectBackends({}),
    });

    this.out(result.changes.length > 0 ? "gbt setup: done." : "gbt setup: already set up; nothing changed.");
    for (const change of result.changes) this.out(`  ✓ ${change}`);
    for (const warning of result.warnings) this.warn(warning);
    this.out(renderProfile(result.profile));
    this.out("\nNext: `gbt status` at any time; `gbt serve` to serve inference.");
    return { ...result.profile, changes: result.changes, warnings: result.warnings };
  }
}
