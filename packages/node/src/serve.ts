/**
 * `gbt serve` as a service: config → backend → node server. Checks the backend before
 * listening (an unreachable backend fails fast with its exit code), loads the embedded model
 * eagerly, and refuses to listen beyond loopback without API keys.
 */
import { GbtError } from "@gbt/protocol";
import type { Logger } from "pino";
import { buildBackend, defaultCapacity } from "./backend-factory.js";
import type { Backend, ModelInfo } from "./backends/types.js";
import { type BackendConfig, loadConfig } from "./config.js";
import { openDatabase } from "./node-database.js";
import type { GbtPaths } from "./paths.js";
import { ApiKeyStore } from "./server/api-keys.js";
import { type NodeServer, startNodeServer } from "./server/node-server.js";

export const DEFAULT_PORT = 8787;

export interface ServeParameters {
  paths: GbtPaths;
  logger: Logger;
  host?: string;
  port?: number;
  /** Overrides the configured model (a GGUF path or id for the embedded backend). */
  model?: string;
  threads?: number;
  capacity?: number;
  /** Require an API key even on loopback. */
  requireApiKey?: boolean;
}

export interface RunningNode {
  server: NodeServer;
  backend: Backend;
  models: ModelInfo[];
  backendConfig: BackendConfig;
  requireApiKey: boolean;
  /** Graceful stop: finish in-flight work up to the deadline, then release the backend. */
  close(deadlineMs?: number): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function startServe(parameters: ServeParameters): Promise<RunningNode> {
  const { paths, logger } = parameters;
  const config = await loadConfig(paths.configFile);
  const host = parameters.host ?? config.server?.host ?? "127.0.0.1";
  const port = parameters.port ?? config.server?.port ?? DEFAULT_PORT;
  const backendConfig: BackendConfig = {
    ...config.backend,
    ...(parameters.model ? { model: parameters.model } : {}),
  };
  const capacity = parameters.capacity ?? backendConfig.capacity ?? defaultCapacity(backendConfig.kind);

  const db = openDatabase(paths.nodeDatabase);
  const apiKeys = new ApiKeyStore(db);
  const requireApiKey = parameters.requireApiKey === true || !isLoopback(host);
  if (requireApiKey && !apiKeys.hasKeys()) {
    db.close();
    throw new GbtError("USAGE", `Serving on ${host} requires API keys, and this node has none.`, {
      hint: "Create one with `gbt keys create NAME`, or serve on 127.0.0.1.",
    });
  }

  const { backend, defaultModel } = await buildBackend(backendConfig, paths, {
    capacity,
    ...(parameters.threads !== undefined ? { threads: parameters.threads } : {}),
  });
  try {
    const health = await backend.health();
    if (!health.ok) {
      throw new GbtError(
        "BACKEND_UNREACHABLE",
        `The ${backend.kind} backend at ${backend.location} is not healthy: ${health.detail ?? "no answer"}.`,
        {
          hint:
            backend.kind === "ollama"
              ? "Start Ollama (`ollama serve`) or choose another backend with `gbt setup --backend`."
              : "Start the backend server or choose another with `gbt setup --backend`.",
        },
      );
    }
    if (defaultModel && backend.loadModel) await backend.loadModel(defaultModel);
    const models = await backend.listModels();
    const server = await startNodeServer({ backend, logger, capacity, apiKeys, requireApiKey, host, port });
    return {
      server,
      backend,
      models,
      backendConfig,
      requireApiKey,
      async close(deadlineMs = 10_000) {
        await server.close(deadlineMs);
        await backend.close();
        db.close();
      },
    };
  } catch (error) {
    await backend.close().catch(() => undefined);
    db.close();
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new GbtError("USAGE", `Port ${port} on ${host} is already in use.`, {
        hint: "Choose another with --port, or stop the other server.",
      });
    }
    throw error;
  }
}
