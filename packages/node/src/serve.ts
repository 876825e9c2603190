/**
 * `gbt serve` as a service: config → backend → node server. Checks the backend before
 * listening (an unreachable backend fails fast with its exit code), loads the embedded model
 * eagerly, and refuses to listen beyond loopback without API keys. With a gateway configured it
 * unlocks the node key up front, then links to the gateway in the background once listening:
 * serving never waits for the gateway, which may be down.
 */
import type { AgentEndpoint } from "@gbt/agent";
import { GbtError, isLoopbackHost } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Logger } from "pino";
import type { Address } from "viem";
import { buildBackend, defaultCapacity } from "./backend-factory.js";
import type { EmbeddedModelFile } from "./backends/embedded.js";
import type { Backend, ModelInfo } from "./backends/types.js";
import { listBenchmarkRecords } from "./benchmark/benchmark-record.js";
import {
  type BackendConfig,
  type GpuChoice,
  type GpuLayers,
  gatewayConfigSchema,
  loadConfig,
} from "./config.js";
import { type GatewayLink, startGatewayLink } from "./gateway-link.js";
import type { GpuStatus } from "./gpu/resolve-gpu.js";
import { loadNodeAccount } from "./identity.js";
import { embeddedModelFromManifestFile } from "./model-manifest-file.js";
import { openNodeDatabase } from "./node-database.js";
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
  /** Embedded: GPU choice and layers offloaded, over the config's `backend.gpu` / `backend.gpuLayers`. */
  gpu?: GpuChoice;
  gpuLayers?: GpuLayers;
  /** Require an API key even on loopback. */
  requireApiKey?: boolean;
  /** Register with this gateway (overrides the config's `gateway.url`). */
  gatewayUrl?: string;
  /** The URL the gateway uses to reach this node (default: the config's, else the server's own URL). */
  publicUrl?: string;
  /** Unlocks an encrypted node key (needed only when linking to a gateway). */
  passphrase?: string;
  /** The node agent answering `/agent/jobs` (`startNode()` composes it). */
  agent?: AgentEndpoint;
  /**
   * Serve the model of this signed manifest (embedded backend): the signature is checked (against
   * `publishers` when given) and the GGUF's sha256 is checked against the manifest before it loads.
   */
  modelManifest?: { file: string; publishers?: readonly Address[] };
}

export interface RunningNode {
  server: NodeServer;
  backend: Backend;
  models: ModelInfo[];
  backendConfig: BackendConfig;
  /** Embedded: the GPU it runs on, or why it runs on the CPU. */
  gpu?: GpuStatus;
  requireApiKey: boolean;
  /** The gateway link, when a gateway is configured; it registers in the background. */
  link: GatewayLink | null;
  /** Graceful stop: finish in-flight work up to the deadline, then release the backend. */
  close(deadlineMs?: number): Promise<void>;
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
  const gatewayUrl = parameters.gatewayUrl ?? config.gateway?.url;
  const gatewayConfig =
    gatewayUrl === undefined
      ? undefined
      : checkGatewayConfig(gatewayUrl, parameters.publicUrl ?? config.gateway?.publicUrl);
  // Unlock the key before anything starts: a wrong passphrase must fail now, not in the background.
  const account = gatewayConfig
    ? await loadNodeAccount(paths.nodeKeystore, parameters.passphrase)
    : undefined;
  if (account && account.address.toLowerCase() !== config.node.address.toLowerCase()) {
    throw new GbtError(
      "CONFIG_INVALID",
      `The config names node ${config.node.address}, but the keystore holds ${account.address}.`,
      { hint: "Run `gbt setup` again so that the config and the key agree." },
    );
  }

  const db = openNodeDatabase(paths.nodeDatabase);
  const apiKeys = new ApiKeyStore(db);
  const requireApiKey = parameters.requireApiKey === true || !isLoopbackHost(host);
  if (requireApiKey && !apiKeys.hasKeys()) {
    db.close();
    throw new GbtError("USAGE", `Serving on ${host} requires API keys, and this node has none.`, {
      hint: "Create one with `gbt keys create NAME`, or serve on 127.0.0.1.",
    });
  }

  let embeddedModel: EmbeddedModelFile | undefined;
  if (parameters.modelManifest !== undefined) {
    if (backendConfig.kind !== "embedded") {
      db.close();
      throw new GbtError(
        "USAGE",
        `A model manifest is served by the embedded backend, not ${backendConfig.kind}.`,
        {
          hint: "Drop --manifest, or `gbt setup --backend embedded`.",
        },
      );
    }
    embeddedModel = await embeddedModelFromManifestFile(parameters.modelManifest.file, {
      ...(parameters.modelManifest.publishers
        ? { publishers: [...parameters.modelManifest.publishers] }
        : {}),
    }).catch((error: unknown) => {
      db.close();
      throw error;
    });
  }
  const { backend, defaultModel, gpu, registrationKind } = await buildBackend(backendConfig, paths, {
    ...(embeddedModel ? { embeddedModel } : {}),
    capacity,
    ...(parameters.threads !== undefined ? { threads: parameters.threads } : {}),
    ...(parameters.gpu !== undefined ? { gpu: parameters.gpu } : {}),
    ...(parameters.gpuLayers !== undefined ? { gpuLayers: parameters.gpuLayers } : {}),
    ...(parameters.passphrase !== undefined ? { passphrase: parameters.passphrase } : {}),
    onWarning: (message) => logger.warn(message),
  }).catch((error: unknown) => {
    db.close();
    throw error;
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
    // The server starts before the link exists (the link needs the server's URL): it asks through this.
    let link: GatewayLink | null = null;
    const server = await startNodeServer({
      backend,
      logger,
      capacity,
      apiKeys,
      requireApiKey,
      host,
      port,
      ...(parameters.agent ? { agent: parameters.agent } : {}),
      ...(account
        ? {
            gatewayLink: {
              isLinkToken: (token: string) => link?.isLinkToken(token) ?? false,
              signReceipt: (receipt) => {
                if (!link) throw new GbtError("GATEWAY_UNREACHABLE", "The gateway link is not started.");
                return link.signReceipt(receipt);
              },
            },
          }
        : {}),
    });
    if (account && gatewayConfig) {
      const nodeUrl = gatewayConfig.publicUrl ?? server.url;
      if (gatewayConfig.publicUrl === undefined && /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(server.url)) {
        logger.warn(
          { nodeUrl },
          "The gateway will be told this node's unspecified address; set --public-url (or gateway.publicUrl).",
        );
      }
      link = startGatewayLink({
        gatewayUrl: gatewayConfig.url,
        account,
        nodeUrl,
        capacity,
        chainId: config.node.chainId,
        models: async () =>
          (await backend.listModels()).map((m) => ({
            id: m.id,
            ...(m.digest ? { digest: m.digest } : {}),
            ...(m.capabilities ? { capabilities: m.capabilities } : {}),
          })),
        backend: {
          kind: registrationKind ?? backend.kind,
          ...(health.version ? { version: health.version } : {}),
        },
        inFlight: () => server.inFlight(),
        health: async () => {
          const now = await backend.health();
          return { ok: now.ok, ...(now.detail ? { detail: now.detail } : {}) };
        },
        latestBenchmark: () => listBenchmarkRecords(db, { limit: 1 })[0] ?? null,
        // The agent's owners now: the gateway relays only their jobs (none without an agent).
        owners: () => parameters.agent?.allowlist().owners ?? [],
        logger: logger.child({ component: "gateway-link" }),
      });
    }
    return {
      server,
      backend,
      models,
      backendConfig,
      ...(gpu ? { gpu } : {}),
      requireApiKey,
      link,
      async close(deadlineMs = 10_000) {
        await link?.stop();
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

function checkGatewayConfig(url: string, publicUrl: string | undefined) {
  const parsed = gatewayConfigSchema.safeParse({ url, ...(publicUrl !== undefined ? { publicUrl } : {}) });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") === "publicUrl" ? "public URL" : "gateway URL";
    throw new GbtError("USAGE", `The ${field} is invalid: ${issue?.message ?? "malformed"}.`, {
      details: { gatewayUrl: url, publicUrl: publicUrl ?? null },
      hint: "Give an http:// or https:// URL (--gateway-url / --public-url, or gateway.url in the config).",
    });
  }
  return parsed.data;
}
