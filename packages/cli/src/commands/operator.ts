import { readFile } from "node:fs/promises";
import { readConfigIfPresent, resolveEmbeddedModel, resolvePaths } from "@gbt/node";
import { type PlannerChoice, plannerKinds, runOperator } from "@gbt/operator";
import { GbtError, schemas } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import type { Address } from "viem";
import { GbtCommand } from "../gbt-command.js";
import { nodeUrlFlag } from "../job-client.js";
import { ownerAccount } from "../owner-key.js";
import { isInteractive, readSecretFile } from "../terminal-input.js";

const DEFAULT_CHAIN_ID = 31337;
const DEFAULT_PLANNER_URLS = {
  openai: "http://127.0.0.1:8080/v1",
  ollama: "http://127.0.0.1:11434",
} as const;

export default class Operator extends GbtCommand {
  static override summary =
    "Chat with your node: the Operator plans jobs, you approve, it signs them for the agent.";

  static override description =
    `Opens the Operator, a terminal assistant for the node's admin. Ask in plain words ("status", "restart the backend", "run a benchmark", "pull gbt-test-small", "why is my node parked?"); the planner proposes jobs from the agent's allowlist, each shown with its type, parameters, risk and why. Press a to approve (the job is then signed with the owner key, sent to the node's agent and followed to its result), r to reject, e to edit its parameters. Nothing runs without your approval; every proposal is checked against the agent's own schemas and bound to this node, and one that fails is dropped with the reason.

Planners: offline (default; no model needed: status, restart, pull/remove/switch a model, benchmark, drain/resume, logs), openai (any OpenAI-compatible URL: the gbt gateway, \`gbt serve\`, vLLM, llama.cpp…), ollama, embedded (a GGUF in process). Explanations quote their sources: the status.read result and, with --gateway-url, the gateway's view of this node.

Without a TTY, use --prompt: the plan (and, with --approve, each job's result) is printed; with --json as JSON lines, one event each, ending with a "done" event. It never prompts without a TTY. Exit codes: 0 ok, 5 node unreachable, 6 nothing valid to propose or a job's parameters refused, else the class of the failed job's error.`;

  static override examples = [
    {
      description: "Chat with this machine's node",
      command: "<%= config.bin %> <%= command.id %> --key-file ./owner.key",
    },
    {
      description: "Plan with a model behind an OpenAI-compatible endpoint",
      command:
        "<%= config.bin %> <%= command.id %> --key-file ./owner.key --planner openai --planner-url http://127.0.0.1:8080/v1 --planner-model llama3.1:8b",
    },
    {
      description: "From a script: plan, approve and print the results as JSON lines",
      command:
        '<%= config.bin %> <%= command.id %> --prompt "restart the backend" --approve --json --key-file ./owner.key',
    },
  ];

  static override flags = {
    "node-url": nodeUrlFlag,
    node: Flags.string({
      helpValue: "0x…",
      description: "Address of the node (default: this machine's node from its config).",
    }),
    "chain-id": Flags.integer({
      helpValue: "N",
      min: 1,
      description: `Chain id of the signing domain (default: the config's, else ${DEFAULT_CHAIN_ID}).`,
    }),
    "key-file": Flags.string({
      helpValue: "PATH",
      description: "Owner key: a hex private key or a gbt keystore (else GBT_OWNER_KEY).",
    }),
    "passphrase-file": Flags.string({
      helpValue: "PATH",
      description: "Passphrase of an encrypted keystore (else GBT_PASSPHRASE, else asked on the TTY).",
    }),
    planner: Flags.string({
      options: [...plannerKinds],
      default: "offline",
      description: "Who plans: rules (offline) or an LLM.",
    }),
    "planner-url": Flags.string({
      helpValue: "URL",
      description: `The planner's endpoint (openai default ${DEFAULT_PLANNER_URLS.openai}, ollama default ${DEFAULT_PLANNER_URLS.ollama}).`,
    }),
    "planner-model": Flags.string({
      helpValue: "NAME|PATH",
      description:
        "The planning model: a model id (openai, ollama) or a GGUF path or models-dir id (embedded; default the test model, which only shows the plumbing).",
    }),
    "planner-api-key-file": Flags.string({
      helpValue: "PATH",
      description: "API key for the openai planner (else OPENAI_API_KEY).",
    }),
    prompt: Flags.string({
      helpValue: "TEXT",
      description: "Plan this one request without the chat (headless).",
    }),
    approve: Flags.boolean({
      default: false,
      description: "With --prompt: sign and submit the proposed jobs.",
    }),
    "gateway-url": Flags.string({
      helpValue: "URL",
      description: "A gateway whose view of this node the Operator may quote.",
    }),
    "gateway-admin-token-file": Flags.string({
      helpValue: "PATH",
      description: "That gateway's admin token (else GBT_GATEWAY_ADMIN_TOKEN).",
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Operator);
    if (flags.approve && flags.prompt === undefined) {
      throw new GbtError("USAGE", "--approve only applies to --prompt.", {
        hint: "In the chat, approve each job with the a key.",
      });
    }
    const paths = resolvePaths();
    const config = await readConfigIfPresent(paths.configFile);
    const interactive = isInteractive() && Boolean(process.stdout.isTTY) && !this.jsonEnabled();
    const exitCode = await runOperator({
      nodeUrl: flags["node-url"],
      node: {
        address: nodeAddress(flags.node, config?.node.address),
        chainId: flags["chain-id"] ?? config?.node.chainId ?? DEFAULT_CHAIN_ID,
      },
      mode: config?.node.mode,
      planner: await plannerChoice(flags, paths),
      // The TUI unlocks the key before it draws (a passphrase prompt cannot share the screen); headless only when approving.
      signer: () =>
        ownerAccount(flags["key-file"], flags["passphrase-file"], { promptForPassphrase: interactive }),
      gateway: await gatewayOption(flags["gateway-url"], flags["gateway-admin-token-file"]),
      // The node's signed earnings view: from its own gateway unless --gateway-url names another.
      earnings:
        (flags["gateway-url"] ?? config?.gateway?.url) !== undefined
          ? {
              gatewayUrl: (flags["gateway-url"] ?? config?.gateway?.url) as string,
              gatewayAddress: flags["gateway-url"] ? undefined : config?.link?.gatewayAddress,
            }
          : undefined,
      prompt: flags.prompt,
      approve: flags.approve,
      json: this.jsonEnabled(),
      interactive,
      write: (text) => process.stdout.write(text),
      preloadSigner: flags.prompt === undefined,
    });
    process.exitCode = exitCode;
  }
}

function nodeAddress(flag: string | undefined, fromConfig: string | undefined): Address {
  const value = flag ?? fromConfig;
  if (value === undefined) {
    throw new GbtError("MISSING_INPUT", "No --node given and this machine has no node config.", {
      hint: "Pass --node 0x… (the node's address), or run on the node after `gbt setup`.",
    });
  }
  const parsed = schemas.address.safeParse(value);
  if (!parsed.success) {
    throw new GbtError("INVALID_ADDRESS", `--node ${value} is not an address.`, {
      hint: "Pass the node's address as 0x followed by 40 hex characters.",
    });
  }
  return parsed.data as Address;
}

async function plannerChoice(
  flags: {
    planner: string;
    "planner-url"?: string | undefined;
    "planner-model"?: string | undefined;
    "planner-api-key-file"?: string | undefined;
  },
  paths: ReturnType<typeof resolvePaths>,
): Promise<PlannerChoice> {
  const model = flags["planner-model"];
  switch (flags.planner) {
    case "openai":
    case "ollama": {
      if (!model) {
        throw new GbtError("MISSING_INPUT", `--planner ${flags.planner} needs --planner-model.`, {
          hint: "Name the model the endpoint serves (see its /v1/models), or use --planner offline.",
        });
      }
      const url = flags["planner-url"] ?? DEFAULT_PLANNER_URLS[flags.planner];
      if (flags.planner === "ollama") return { kind: "ollama", url, model };
      const apiKey = flags["planner-api-key-file"]
        ? await readSecretFile(flags["planner-api-key-file"], "planner API key")
        : process.env.OPENAI_API_KEY;
      return { kind: "openai", url, model, apiKey };
    }
    case "embedded": {
      const resolved = await resolveEmbeddedModel(model, paths);
      return { kind: "embedded", modelPath: resolved.path, modelName: resolved.id };
    }
    default:
      return { kind: "offline" };
  }
}

async function gatewayOption(url: string | undefined, tokenFile: string | undefined) {
  if (url === undefined) return undefined;
  const adminToken = tokenFile
    ? (
        await readFile(tokenFile, "utf8").catch((cause: unknown) => {
          throw new GbtError("INVALID_INPUT", `Cannot read the gateway admin token file ${tokenFile}.`, {
            cause,
          });
        })
      ).trim()
    : process.env.GBT_GATEWAY_ADMIN_TOKEN;
  if (!adminToken) {
    throw new GbtError("MISSING_INPUT", "--gateway-url needs the gateway's admin token.", {
      hint: "Pass --gateway-admin-token-file PATH or set GBT_GATEWAY_ADMIN_TOKEN.",
    });
  }
  return { url, adminToken };
}
