/**
 * The node's config file (`config.json` in the config dir). Validated by its schema on every
 * load: a corrupt or hand-edited file names itself and the bad field and exits with the config
 * code. Writes are atomic and only happen when the content changes, so re-running setup is a no-op.
 */
import { GbtError, schemas } from "@gbt/protocol";
import { readJsonFile, writeJsonFile } from "@gbt/store";
import { z } from "zod";
import { pullPolicyConfigSchema } from "./models/pull-policy.js";

export const nodeModes = ["local", "managed", "network"] as const;
export type NodeMode = (typeof nodeModes)[number];

export const backendKinds = ["embedded", "ollama", "openai"] as const;

const httpUrl = z
  .string()
  .max(512)
  .url()
  .refine((value) => /^https?:\/\//.test(value), { message: "must be an http:// or https:// URL" });

/** Which GPU backend the embedded backend uses: `auto` picks the best one present, `off` runs on the CPU. */
export const gpuChoices = ["auto", "cuda", "vulkan", "metal", "off"] as const;
export type GpuChoice = (typeof gpuChoices)[number];

/** Layers offloaded to the GPU: a count, `auto` (as many as fit, node-llama-cpp's estimate) or `max` (all, or refuse). */
export const gpuLayersSchema = z.union([z.number().int().min(0).max(100_000), z.enum(["auto", "max"])]);
export type GpuLayers = z.infer<typeof gpuLayersSchema>;

export const backendConfigSchema = z.strictObject({
  kind: z.enum(backendKinds),
  /** Server URL for ollama / openai backends. */
  url: httpUrl.optional(),
  /** Default model: a GGUF path or id (embedded), an Ollama tag, or a server's model id. */
  model: z.string().min(1).max(1024).optional(),
  /** llama.cpp threads for the embedded backend; a safe default for the machine when absent. */
  threads: z.number().int().min(1).max(256).optional(),
  /** Parallel requests the node accepts before answering 429. */
  capacity: z.number().int().min(1).max(256).optional(),
  /** Context size (tokens) for the embedded backend. */
  contextSize: z.number().int().min(64).max(1_048_576).optional(),
  /** GPU backend for the embedded backend (default `auto`). */
  gpu: z.enum(gpuChoices).optional(),
  /** Layers offloaded to the GPU (default `auto`). */
  gpuLayers: gpuLayersSchema.optional(),
  /**
   * The openai backend's API key, as stored by `gbt setup --backend-api-key-file` (a secret box in
   * the config dir, encrypted with the node's passphrase when it has one). Its presence makes the
   * node a cloud-account node.
   */
  apiKeyFile: z.string().min(1).max(4096).optional(),
});
export type BackendConfig = z.infer<typeof backendConfigSchema>;

/** The gateway this node registers with (`gbt serve` starts the link when set). */
export const gatewayConfigSchema = z.strictObject({
  url: httpUrl,
  /** The URL the gateway uses to reach this node; default the server's own URL. */
  publicUrl: httpUrl.optional(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/**
 * How the node reaches its gateway: `outbound` (the node dials the gateway and carries everything
 * over that one connection: no open port, works behind NAT), `direct` (the gateway connects to the
 * node's public URL), or `auto` (default: outbound unless the gateway can reach the public URL).
 */
export const linkModes = ["auto", "outbound", "direct"] as const;
export type LinkMode = (typeof linkModes)[number];

export const linkConfigSchema = z.strictObject({
  mode: z.enum(linkModes).optional(),
  /** The gateway's address the node expects; absent: pinned on first use (and said so). */
  gatewayAddress: schemas.address.optional(),
});
export type LinkConfig = z.infer<typeof linkConfigSchema>;

/**
 * Network mode's limits (mode `network`): when and how much of this node the open pool may use.
 * `schedule`: one or more `HH:MM-HH:MM` windows (comma-separated, may wrap midnight) in `timezone`
 * (IANA; default the machine's); absent: always. `maxShare`: the most of the node's capacity pooled
 * traffic may hold at once (local keys keep the rest); `maxConcurrent`: the most pooled requests at once.
 */
export const networkConfigSchema = z.strictObject({
  schedule: z.string().min(1).max(256).optional(),
  timezone: z.string().min(1).max(64).optional(),
  maxShare: z.number().gt(0).max(1).optional(),
  maxConcurrent: z.number().int().min(1).max(256).optional(),
});
export type NetworkConfig = z.infer<typeof networkConfigSchema>;

export const nodeConfigSchema = z.strictObject({
  version: z.literal(1),
  node: z.strictObject({
    address: schemas.address,
    mode: z.enum(nodeModes),
    chainId: schemas.chainId,
    owners: z.array(schemas.address).max(32),
  }),
  backend: backendConfigSchema,
  server: z
    .strictObject({
      host: z.string().min(1).max(255),
      port: z.number().int().min(0).max(65_535),
    })
    .optional(),
  gateway: gatewayConfigSchema.optional(),
  link: linkConfigSchema.optional(),
  network: networkConfigSchema.optional(),
  /** The Node Agent's own settings: which sources a signed model.pull may use (models/pull-policy.ts). */
  agent: z.strictObject({ pullPolicy: pullPolicyConfigSchema.optional() }).optional(),
});
export type NodeConfig = z.infer<typeof nodeConfigSchema>;

/** Reads and validates the config; NOT_SET_UP when there is none. */
export async function loadConfig(path: string): Promise<NodeConfig> {
  const config = await readConfigIfPresent(path);
  if (!config) {
    throw new GbtError("NOT_SET_UP", `No gbt config at ${path}.`, {
      details: { path },
      hint: "Run `gbt setup` first (or set GBT_HOME to the node's directory).",
    });
  }
  return config;
}

/** Like loadConfig, but undefined when the file does not exist. */
export async function readConfigIfPresent(path: string): Promise<NodeConfig | undefined> {
  return readJsonFile(path, nodeConfigSchema, {
    what: "The config",
    hint: "Fix the file by hand, or move it away and run `gbt setup` again.",
  });
}

/** Writes the config atomically if it differs from what is on disk; returns whether it wrote. */
export async function saveConfig(path: string, config: NodeConfig): Promise<boolean> {
  return writeJsonFile(path, nodeConfigSchema.parse(config));
}
