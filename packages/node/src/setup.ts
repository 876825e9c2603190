/**
 * `gbt setup` as a service: identity, owners, backend choice, config, database, and the
 * node profile (hardware + backends). Everything the user gives is validated before anything
 * is written, and re-running with the same inputs changes nothing on disk.
 */
import { constants } from "node:fs";
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { GbtError, openSecret, readSecretBox, schemas, sealSecret, writeSecretBox } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Address, Hex } from "viem";
import {
  type BackendConfig,
  backendConfigSchema,
  type GpuChoice,
  type GpuLayers,
  type NodeConfig,
  type NodeMode,
  readConfigIfPresent,
  saveConfig,
} from "./config.js";
import type { DetectedBackend } from "./detect-backends.js";
import { type GpuStatus, resolveGpu as resolveGpuDefault } from "./gpu/resolve-gpu.js";
import type { GpuInfo, HardwareProfile } from "./hardware.js";
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
  /** The cloud backend's stored API key (never the key itself), or null when there is none. */
  backendApiKey: { path: string; encrypted: boolean } | null;
  /** Embedded backend: the GPU it will use, or why it runs on the CPU; null for other backends. */
  gpu: GpuStatus | null;
  detectedBackends: DetectedBackend[];
  hardware: HardwareProfile;
  paths: { config: string; data: string };
  /** Whether an owner has claimed the node, and the code to claim it with while none has (`gbt status`). */
  claim?: NodeClaimState;
}

/** An unclaimed node (no owners) shows a code; `gbt owner claim CODE` claims it. */
export interface NodeClaimState {
  claimed: boolean;
  code: string | null;
}

export interface SetupParameters {
  paths: GbtPaths;
  passphrase?: string;
  importKey?: Hex;
  owners?: readonly string[];
  backend?: "embedded" | "ollama" | "openai" | "auto";
  backendUrl?: string;
  model?: string;
  /** Embedded: GPU backend (`auto` default) and layers offloaded. */
  gpu?: GpuChoice;
  gpuLayers?: GpuLayers;
  /** openai backend: a file holding the cloud account's API key, stored sealed in the config dir. */
  backendApiKeyFile?: string;
  mode?: NodeMode;
  force?: boolean;
  /** Probes this machine (injected so tests and callers control time bounds). */
  probeHardware: () => Promise<HardwareProfile>;
  detectBackends: () => Promise<DetectedBackend[]>;
  /** The GPU resolver (default the real one, packages/node/src/gpu). */
  resolveGpu?: (choice: GpuChoice, gpus: readonly GpuInfo[] | null) => Promise<GpuStatus>;
}

export interface SetupResult {
  profile: NodeProfile;
  /** What this run changed on disk; empty when nothing did. */
  changes: string[];
  /** Things the user should know (an API key stored unencrypted). */
  warnings: string[];
}

/** Where `gbt setup` stores the cloud backend's API key. */
export function backendApiKeyPath(paths: GbtPaths): string {
  return join(paths.configDir, "backend-api-key.json");
}

/** Resolves the GPU of an embedded backend config; null for the other backends. */
export async function gpuOfBackend(
  backend: BackendConfig,
  gpus: readonly GpuInfo[] | null,
  resolve: NonNullable<SetupParameters["resolveGpu"]> = (choice, found) =>
    resolveGpuDefault({ choice, gpus: found }),
): Promise<GpuStatus | null> {
  if (backend.kind !== "embedded") return null;
  return resolve(backend.gpu ?? "auto", gpus);
}

async function readApiKeyFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new GbtError("INVALID_INPUT", `Cannot read the API key file ${file}.`, {
      details: { path: file, reason: (cause as NodeJS.ErrnoException).code },
      hint: "Give a readable file holding the key on its first line (--backend-api-key-file).",
    });
  }
  const key = text.trim();
  if (key.length === 0 || key.length > 4096 || /\s/.test(key)) {
    // The content is never echoed: it is a secret.
    throw new GbtError(
      "INVALID_INPUT",
      `The API key file ${file} does not hold one key (empty, too long, or several words).`,
      {
        details: { path: file },
        hint: "Put the key alone in the file.",
      },
    );
  }
  return key;
}

/** Seals the API key into the config dir unless the same key is already stored the same way. */
async function storeApiKey(path: string, key: string, passphrase: string | undefined): Promise<boolean> {
  const current = await readSecretBox(path).catch(() => undefined);
  if (current && current.encrypted === (passphrase !== undefined)) {
    const stored = await openSecret(current, passphrase).catch(() => undefined);
    if (stored === key) return false;
  }
  await writeSecretBox(path, await sealSecret(key, "backend API key", passphrase));
  return true;
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
  if (parameters.backendApiKeyFile !== undefined && backend !== "openai") {
    throw new GbtError("USAGE", "--backend-api-key-file needs --backend openai.", {
      hint: "Example: gbt setup --backend openai --backend-url https://api.example.com/v1 --backend-api-key-file key.txt",
    });
  }
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
  if (chosen.kind === "embedded") {
    if (parameters.gpu !== undefined) chosen = { ...chosen, gpu: parameters.gpu };
    if (parameters.gpuLayers !== undefined) chosen = { ...chosen, gpuLayers: parameters.gpuLayers };
  } else if (parameters.gpu !== undefined && parameters.gpu !== "auto") {
    throw new GbtError(
      "USAGE",
      `--gpu ${parameters.gpu} applies to the embedded backend, not ${chosen.kind}.`,
      {
        hint: "Drop --gpu, or use --backend embedded.",
      },
    );
  }
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
  if (parameters.mode === "network" && owners.length === 0) {
    const existing = await readConfigIfPresent(paths.configFile).catch(() => undefined);
    if ((existing?.node.owners.length ?? 0) === 0) {
      throw new GbtError(
        "CLAIM_REQUIRED",
        `Mode ${parameters.mode} needs an owner, and this node has none.`,
        {
          hint: "Give --owner 0x…, or set up in local mode and claim the node (`gbt owner claim CODE`, the code is in `gbt status`).",
        },
      );
    }
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

  let backend = chooseBackend(parameters, existing?.backend);
  const apiKey =
    parameters.backendApiKeyFile !== undefined
      ? await readApiKeyFile(parameters.backendApiKeyFile)
      : undefined;
  // Probed before anything is written: an explicit --gpu that cannot run here changes nothing.
  const [hardware, detectedBackends] = await Promise.all([
    parameters.probeHardware(),
    parameters.detectBackends(),
  ]);
  const gpu = await gpuOfBackend(
    backend,
    hardware.gpus,
    parameters.resolveGpu ?? ((choice, gpus) => resolveGpuDefault({ choice, gpus })),
  );
  const changes: string[] = [];
  const warnings: string[] = [];
  const identity = await ensureIdentity({
    keystorePath: paths.nodeKeystore,
    ...(parameters.passphrase !== undefined ? { passphrase: parameters.passphrase } : {}),
    ...(parameters.importKey ? { importKey: parameters.importKey } : {}),
    force,
  });
  if (identity.action !== "kept") changes.push(`identity ${identity.action}: ${identity.address}`);

  if (apiKey !== undefined) {
    if (identity.encrypted && parameters.passphrase === undefined) {
      throw new GbtError(
        "PASSPHRASE_REQUIRED",
        "The node key is encrypted: its passphrase is needed to encrypt the API key.",
        {
          hint: "Pass --passphrase-file FILE or set GBT_PASSPHRASE.",
        },
      );
    }
    const keyPath = backendApiKeyPath(paths);
    if (await storeApiKey(keyPath, apiKey, parameters.passphrase)) {
      changes.push(
        `backend API key stored ${parameters.passphrase !== undefined ? "encrypted" : "unencrypted (mode 0600)"}: ${keyPath}`,
      );
    }
    if (parameters.passphrase === undefined) {
      warnings.push(
        `The backend API key is stored unencrypted (mode 0600) at ${keyPath}: the node has no passphrase. Run setup with --passphrase-file to encrypt it.`,
      );
    }
    backend = { ...backend, apiKeyFile: keyPath };
  } else if (backend.kind !== "openai" && backend.apiKeyFile !== undefined) {
    const { apiKeyFile: _dropped, ...rest } = backend;
    backend = rest;
  }

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

  return {
    profile: profileOf(config, paths, identity.encrypted, hardware, detectedBackends, {
      gpu,
      backendApiKey: await apiKeyState(config.backend),
    }),
    changes,
    warnings,
  };
}

/** Builds the profile document from config and fresh probes. */
export function profileOf(
  config: NodeConfig,
  paths: GbtPaths,
  encrypted: boolean,
  hardware: HardwareProfile,
  detectedBackends: DetectedBackend[],
  extra: { gpu: GpuStatus | null; backendApiKey: NodeProfile["backendApiKey"]; claim?: NodeClaimState } = {
    gpu: null,
    backendApiKey: null,
  },
): NodeProfile {
  return {
    schemaVersion: 1,
    address: config.node.address,
    keystore: { path: paths.nodeKeystore, encrypted },
    owners: config.node.owners,
    mode: config.node.mode,
    chainId: config.node.chainId,
    backend: config.backend,
    backendApiKey: extra.backendApiKey,
    gpu: extra.gpu,
    detectedBackends,
    hardware,
    paths: { config: paths.configDir, data: paths.dataDir },
    ...(extra.claim ? { claim: extra.claim } : {}),
  };
}

/** Whether the stored API key is encrypted (read from its file; the key is not opened). */
export async function apiKeyState(backend: BackendConfig): Promise<NodeProfile["backendApiKey"]> {
  if (backend.apiKeyFile === undefined) return null;
  const box = await readSecretBox(backend.apiKeyFile).catch(() => undefined);
  return { path: backend.apiKeyFile, encrypted: box?.encrypted ?? false };
}
