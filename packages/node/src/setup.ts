/**
 * `gbt setup` as a service: identity, owners, backend choice, config, database, and the
 * node profile (hardware + backends). Everything the user gives is validated before anything
 * is written, and re-running with the same inputs changes nothing on disk.
 */
import { constants } from "node:fs";
import { access, mkdir } from "node:fs/promises";
import { GbtError, schemas } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Address, Hex } from "viem";
import {
  type BackendConfig,
  backendConfigSchema,
  type NodeConfig,
  type NodeMode,
  readConfigIfPresent,
  saveConfig,
} from "./config.js";
import type { DetectedBackend } from "./detect-backends.js";
import type { HardwareProfile } from "./hardware.js";
import { ensureIdentity } from "./identity.js";
import { openNodeDatabase } from "./node-database.js";
import { TEST_MODEL_ID } from "./test-model/test-model.js";

export const DEFAULT_CHAIN_ID = 31337;

/** The node profile: what `gbt setup --json` and `gbt status --json` print. */
export interface NodeProfile {
  schemaVersion: 1;
  address: Address;
  keystore: { path: string; encrypted: boolean };
  owners: Address[];
  mode: NodeMode;
  chainId: number;
  backend: BackendConfig;
  detectedBackends: DetectedBackend[];
  hardware: HardwareProfile;
  paths: { config: string; data: string };
}

export interface SetupParameters {
  paths: GbtPaths;
  passphrase?: string;
  importKey?: Hex;
  owners?: readonly string[];
  backend?: "embedded" | "ollama" | "openai" | "auto";
  backendUrl?: string;
  model?: string;
  mode?: NodeMode;
  force?: boolean;
  /** Probes this machine (injected so tests and callers control time bounds). */
  probeHardware: () => Promise<HardwareProfile>;
  detectBackends: () => Promise<DetectedBackend[]>;
}

export interface SetupResult {
  profile: NodeProfile;
  /** What this run changed on disk; empty when nothing did. */
  changes: string[];
}

function parseOwners(owners: readonly string[]): Address[] {
  const parsed: Address[] = [];
  for (const owner of owners) {
    const result = schemas.address.safeParse(owner.trim());
    if (!result.success) {
      throw new GbtError("INVALID_ADDRESS", `--owner ${JSON.stringify(owner)} is not an address.`, {
        details: { owner },
        hint: "Give the owner's 0x-prefixed 20-byte address, e.g. --owner 0x1234…abcd.",
      });
    }
    if (!parsed.includes(result.data)) parsed.push(result.data);
  }
  return parsed;
}

async function ensureWritable(dir: string, label: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK);
  } catch (cause) {
    throw new GbtError("NOT_WRITABLE", `The ${label} directory ${dir} is not writable.`, {
      details: { path: dir, reason: (cause as NodeJS.ErrnoException).code },
      hint: "Set GBT_HOME to a directory you can write, or fix its permissions.",
      cause,
    });
  }
}

function chooseBackend(parameters: SetupParameters, existing: BackendConfig | undefined): BackendConfig {
  const { backend, backendUrl, model } = parameters;
  if (backendUrl && (backend === undefined || backend === "auto" || backend === "embedded")) {
    throw new GbtError("USAGE", "--backend-url needs --backend ollama or --backend openai.", {
      hint: "Example: gbt setup --backend ollama --backend-url http://127.0.0.1:11434",
    });
  }
  let chosen: BackendConfig;
  if (backend === undefined || backend === "auto") {
    chosen = existing ?? { kind: "embedded", model: TEST_MODEL_ID };
  } else if (backend === "embedded") {
    chosen = existing?.kind === "embedded" ? existing : { kind: "embedded", model: TEST_MODEL_ID };
  } else {
    const url = backendUrl ?? (existing?.kind === backend ? existing.url : undefined) ?? defaultUrl(backend);
    chosen = { ...(existing?.kind === backend ? existing : {}), kind: backend, url };
    if (existing?.kind !== backend) delete chosen.model;
  }
  if (model) chosen = { ...chosen, model };
  const valid = backendConfigSchema.safeParse(chosen);
  if (!valid.success) {
    const issue = valid.error.issues[0];
    const flag =
      issue?.path[0] === "url" ? "--backend-url" : issue?.path[0] === "model" ? "--model" : "--backend";
    throw new GbtError("INVALID_INPUT", `${flag} is invalid: ${issue?.message ?? "malformed"}.`, {
      details: { field: issue?.path.join(".") },
    });
  }
  return valid.data;
}

function defaultUrl(kind: "ollama" | "openai"): string {
  return kind === "ollama" ? "http://127.0.0.1:11434" : "http://127.0.0.1:8000/v1";
}

/** Sets this node up, idempotently. */
export async function setupNode(parameters: SetupParameters): Promise<SetupResult> {
  const { paths, force = false } = parameters;
  const owners = parseOwners(parameters.owners ?? []);
  if (parameters.mode === "network") {
    throw new GbtError("USAGE", "Network mode needs stake, and staking is not available in this version.", {
      hint: "Use --mode local (default) or --mode managed.",
    });
  }
  await ensureWritable(paths.configDir, "config");
  await ensureWritable(paths.dataDir, "data");

  let existing: NodeConfig | undefined;
  try {
    existing = await readConfigIfPresent(paths.configFile);
  } catch (error) {
    if (!force) {
      if (error instanceof GbtError && error.code === "CONFIG_INVALID") {
        throw new GbtError(error.code, error.message, {
          details: error.details,
          hint: "Fix that field, or move the file away and run `gbt setup` again (the identity is kept).",
        });
      }
      throw error;
    }
  }

  const backend = chooseBackend(parameters, existing?.backend);
  const changes: string[] = [];
  const identity = await ensureIdentity({
    keystorePath: paths.nodeKeystore,
    ...(parameters.passphrase !== undefined ? { passphrase: parameters.passphrase } : {}),
    ...(parameters.importKey ? { importKey: parameters.importKey } : {}),
    force,
  });
  if (identity.action !== "kept") changes.push(`identity ${identity.action}: ${identity.address}`);

  // --force rewrites the config from the flags; otherwise owners accumulate.
  const ownerList = force ? [...owners] : [...(existing?.node.owners ?? [])];
  for (const owner of owners) if (!ownerList.includes(owner)) ownerList.push(owner);
  const config: NodeConfig = {
    version: 1,
    node: {
      address: identity.address,
      mode: parameters.mode ?? (force ? undefined : existing?.node.mode) ?? "local",
      chainId: existing?.node.chainId ?? DEFAULT_CHAIN_ID,
      owners: ownerList,
    },
    backend,
    ...(existing?.server ? { server: existing.server } : {}),
    ...(existing?.gateway ? { gateway: existing.gateway } : {}),
  };
  if (await saveConfig(paths.configFile, config)) changes.push(`config written: ${paths.configFile}`);

  const db = openNodeDatabase(paths.nodeDatabase);
  const version = db.pragma("user_version", { simple: true });
  db.close();
  if (existing === undefined && version) changes.push(`database ready: ${paths.nodeDatabase}`);

  const [hardware, detectedBackends] = await Promise.all([
    parameters.probeHardware(),
    parameters.detectBackends(),
  ]);
  return {
    profile: profileOf(config, paths, identity.encrypted, hardware, detectedBackends),
    changes,
  };
}

/** Builds the profile document from config and fresh probes. */
export function profileOf(
  config: NodeConfig,
  paths: GbtPaths,
  encrypted: boolean,
  hardware: HardwareProfile,
  detectedBackends: DetectedBackend[],
): NodeProfile {
  return {
    schemaVersion: 1,
    address: config.node.address,
    keystore: { path: paths.nodeKeystore, encrypted },
    owners: config.node.owners,
    mode: config.node.mode,
    chainId: config.node.chainId,
    backend: config.backend,
    detectedBackends,
    hardware,
    paths: { config: paths.configDir, data: paths.dataDir },
  };
}
