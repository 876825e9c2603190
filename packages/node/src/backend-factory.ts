/**
 * Builds the configured inference backend. The embedded backend with no model configured uses
 * the generated pipeline-test model, creating it on first use; a GGUF path or a model id under
 * the models dir selects a real model.
 */
import { access } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { GbtError, openSecret, readSecretBox } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import { createEmbeddedBackend, type EmbeddedModelFile } from "./backends/embedded.js";
import { createOllamaBackend } from "./backends/ollama.js";
import { createOpenAICompatibleBackend } from "./backends/openai-compatible.js";
import type { Backend } from "./backends/types.js";
import type { BackendConfig, GpuChoice, GpuLayers } from "./config.js";
import { type GpuStatus, resolveGpu } from "./gpu/resolve-gpu.js";
import { type GpuInfo, probeHardware } from "./hardware.js";
import { ensureTestModel, TEST_MODEL_ID } from "./test-model/test-model.js";

/**
 * Requests generated at once when none is configured: 4, like llama.cpp's server. On a CPU the
 * embedded backend's parallel sequences share the cores, so total throughput stays about flat
 * while each stream slows (measured on 2 cores, 1 thread, a 27.6M-parameter model: 138 tok/s at
 * 1 stream, 137 at 2, 142 at 4). `gbt node benchmark --mode serve` finds a node's eligible capacity.
 */
export function defaultCapacity(_kind: BackendConfig["kind"]): number {
  return 4;
}

export interface BuiltBackend {
  backend: Backend;
  /** The model served by default (the embedded backend's loaded model). */
  defaultModel: string | undefined;
  /** Embedded: the GPU it runs on, or why it runs on the CPU. */
  gpu?: GpuStatus;
  /** The kind the node registers as (default the backend's kind): `cloud` for an openai backend with a stored API key. */
  registrationKind?: string;
}

/** Reads the openai backend's stored API key (decrypted with the node's passphrase when sealed). */
export async function readBackendApiKey(
  config: BackendConfig,
  passphrase?: string,
): Promise<string | undefined> {
  if (config.apiKeyFile === undefined) return undefined;
  return openSecret(await readSecretBox(config.apiKeyFile), passphrase);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Resolves an embedded model setting (test model id, GGUF path, or id under the models dir) to `{id, path}`. */
export async function resolveEmbeddedModel(
  model: string | undefined,
  paths: GbtPaths,
): Promise<{ id: string; path: string }> {
  if (model === undefined || model === TEST_MODEL_ID) {
    return { id: TEST_MODEL_ID, path: await ensureTestModel(paths.modelsDir) };
  }
  const candidates = model.endsWith(".gguf")
    ? [resolve(model)]
    : [join(paths.modelsDir, `${model}.gguf`), resolve(model)];
  for (const path of candidates) {
    if (await exists(path)) return { id: basename(path).replace(/\.gguf$/, ""), path };
  }
  throw new GbtError("MODEL_NOT_FOUND", `No GGUF model '${model}' (looked at ${candidates.join(", ")}).`, {
    details: { model, candidates },
    hint: "Give a path to a .gguf file with --model, or omit it to use the generated test model.",
  });
}

export async function buildBackend(
  config: BackendConfig,
  paths: GbtPaths,
  overrides: {
    threads?: number;
    capacity?: number;
    contextSize?: number;
    /** Embedded: serve this model file (e.g. from a signed manifest, with its sha256) instead of the configured one. */
    embeddedModel?: EmbeddedModelFile;
    /** Embedded: GPU choice and offload, over the config's `gpu` / `gpuLayers`. */
    gpu?: GpuChoice;
    gpuLayers?: GpuLayers;
    /** The hardware probe's GPUs, when the caller has them (else probed when a GPU may be used). */
    gpus?: readonly GpuInfo[] | null;
    /** Unlocks the stored API key of a cloud-account (openai) backend. */
    passphrase?: string;
    /** Warnings a user should see (a model only partly offloaded). */
    onWarning?: (message: string) => void;
  } = {},
): Promise<BuiltBackend> {
  const capacity = overrides.capacity ?? config.capacity ?? defaultCapacity(config.kind);
  switch (config.kind) {
    case "embedded": {
      const model = overrides.embeddedModel ?? (await resolveEmbeddedModel(config.model, paths));
      const threads = overrides.threads ?? config.threads;
      const contextSize = overrides.contextSize ?? config.contextSize;
      const choice = overrides.gpu ?? config.gpu ?? "auto";
      const gpuLayers = overrides.gpuLayers ?? config.gpuLayers ?? "auto";
      const gpus =
        choice === "off" ? null : (overrides.gpus ?? (await probeHardware({ dataDir: paths.dataDir })).gpus);
      const gpu = await resolveGpu({ choice, gpus });
      const backend = createEmbeddedBackend({
        models: [model],
        capacity,
        gpu: gpu.backend === "cpu" ? false : gpu.backend,
        gpuLayers,
        ...(overrides.onWarning ? { onWarning: overrides.onWarning } : {}),
        ...(threads !== undefined ? { threads } : {}),
        ...(contextSize !== undefined ? { contextSize } : {}),
      });
      return { backend, defaultModel: model.id, gpu, registrationKind: "embedded" };
    }
    case "ollama":
      return {
        backend: createOllamaBackend({ host: config.url ?? "http://127.0.0.1:11434" }),
        defaultModel: config.model,
        registrationKind: "ollama",
      };
    case "openai": {
      const apiKey = await readBackendApiKey(config, overrides.passphrase);
      return {
        backend: createOpenAICompatibleBackend({
          baseURL: config.url ?? "http://127.0.0.1:8000/v1",
          ...(apiKey !== undefined ? { apiKey } : {}),
        }),
        defaultModel: config.model,
        registrationKind: apiKey !== undefined ? "cloud" : "openai",
      };
    }
  }
}
