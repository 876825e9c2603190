import { loadConfig, readConfigIfPresent, resolvePaths } from "@gbt/node";
import { createJobTypeRegistry, GbtError, type SignedObject, schemas } from "@gbt/protocol";
import { Args, Flags } from "@oclif/core";
import type { Address } from "viem";
import { GbtCommand } from "../../gbt-command.js";
import {
  buildJobParams,
  createSignedJob,
  DEFAULT_JOB_TTL_SECONDS,
  jobTypeEntry,
  MAX_JOB_TTL_SECONDS,
} from "../../job-params.js";
import { ownerAccount } from "../../owner-key.js";

const DEFAULT_CHAIN_ID = 31337;

/** The node the job is for: --node, else this machine's node from its config. */
async function targetNode(flag: string | undefined): Promise<Address> {
  if (flag !== undefined) {
    const parsed = schemas.address.safeParse(flag);
    if (!parsed.success) {
      throw new GbtError("INVALID_ADDRESS", `--node ${flag} is not an address.`, {
        hint: "Pass the node's address as 0x followed by 40 hex characters.",
      });
    }
    return parsed.data as Address;
  }
  const config = await loadConfig(resolvePaths().configFile).catch((cause: unknown) => {
    if (cause instanceof GbtError && cause.code === "NOT_SET_UP") {
      throw new GbtError("MISSING_INPUT", "No --node given and this machine has no node config.", {
        hint: "Pass --node 0x… (the node's address), or run on the node after `gbt setup`.",
        cause,
      });
    }
    throw cause;
  });
  return config.node.address as Address;
}

export default class JobCreate extends GbtCommand {
  static override summary = "Create and sign a job for a node (printed as JSON on stdout).";

  static override description =
    `Builds a Job of an allowlisted type, checks its parameters against the type's strict schema, and signs it with an owner's key. Nothing is sent: the signed Job is printed on stdout, with or without --json, for the node's job endpoint or another tool.

Parameters come from --params-json and --param key=value (repeatable, later ones win); a --param value is typed by the parameter's schema (numbers, booleans), else read as JSON when it parses, else as text. Invalid parameters fail with INVALID_PARAMS (exit 6) naming the parameter, an unknown type with UNKNOWN_JOB_TYPE (exit 6); see \`gbt agent allowlist\` for the types.

The key is read from --key-file (a hex private key, or a gbt keystore unlocked with --passphrase-file or GBT_PASSPHRASE) or GBT_OWNER_KEY; it is never printed. The job is valid from now for --ttl seconds (default ${DEFAULT_JOB_TTL_SECONDS}, at most ${MAX_JOB_TTL_SECONDS}).`;

  static override examples = [
    {
      description: "Ask this machine's node for its status",
      command: "<%= config.bin %> <%= command.id %> status.read --key-file ./owner.key",
    },
    {
      description: "Pull a model on another node",
      command:
        "<%= config.bin %> <%= command.id %> model.pull --param model=llama3.2:1b --node 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --key-file ./owner.key",
    },
    {
      description: "Parameters as JSON, key from the environment",
      command:
        'GBT_OWNER_KEY=$OWNER_KEY <%= config.bin %> <%= command.id %> config.set --params-json \'{"key":"backend.threads","value":8}\'',
    },
  ];

  static override args = {
    type: Args.string({ description: "Job type (see `gbt agent allowlist`).", required: true }),
  };

  static override flags = {
    param: Flags.string({
      helpValue: "KEY=VALUE",
      description: "A parameter of the job; repeat for several.",
      multiple: true,
    }),
    "params-json": Flags.string({ helpValue: "JSON", description: "The parameters as a JSON object." }),
    node: Flags.string({
      helpValue: "0x…",
      description: "Address of the node the job is for (default: this machine's node from its config).",
    }),
    "chain-id": Flags.integer({
      helpValue: "N",
      description: `Chain id of the signing domain (default: the config's, else ${DEFAULT_CHAIN_ID}).`,
      min: 1,
    }),
    ttl: Flags.integer({
      helpValue: "SECONDS",
      description: `How long the job stays valid (max ${MAX_JOB_TTL_SECONDS}).`,
      min: 1,
      max: MAX_JOB_TTL_SECONDS,
      default: DEFAULT_JOB_TTL_SECONDS,
    }),
    nonce: Flags.integer({
      helpValue: "N",
      description: "Job nonce (default: the current time in ms).",
      min: 0,
    }),
    "key-file": Flags.string({
      helpValue: "PATH",
      description: "Owner key: a hex private key or a gbt keystore (else GBT_OWNER_KEY).",
    }),
    "passphrase-file": Flags.string({
      helpValue: "PATH",
      description: "Passphrase of an encrypted keystore (else GBT_PASSPHRASE).",
    }),
  };

  async run(): Promise<SignedObject<"Job">> {
    const { args, flags } = await this.parse(JobCreate);
    const allowlist = createJobTypeRegistry();
    const entry = jobTypeEntry(allowlist, args.type);
    // Parameters are checked before the key is touched: a bad job never asks for a secret.
    const params = allowlist.parseParams(
      args.type,
      buildJobParams({
        schema: entry.jsonSchema(),
        assignments: flags.param,
        paramsJson: flags["params-json"],
      }),
    );
    const node = await targetNode(flags.node);
    const chainId =
      flags["chain-id"] ??
      (await readConfigIfPresent(resolvePaths().configFile))?.node.chainId ??
      DEFAULT_CHAIN_ID;
    const account = await ownerAccount(flags["key-file"], flags["passphrase-file"]);
    const job = await createSignedJob({
      allowlist,
      account,
      type: args.type,
      params,
      node,
      chainId,
      ttlSeconds: flags.ttl,
      nonce: flags.nonce,
    });
    if (!this.jsonEnabled()) process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return job;
  }
}
