/**
 * `gbt serve` as a service: config → backend → node server. Checks the backend before
 * listening (an unreachable backend fails fast with its exit code), loads the embedded model
 * eagerly, and refuses to listen beyond loopback without API keys. With a gateway configured it
 * unlocks the node key up front, then links to the gateway in the background once listening:
 * serving never waits for the gateway, which may be down.
 */
import type { AgentEndpoint } from "@gbt/agent";
import { GbtError, isLoopbackHost, LINK_NODE_URL } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Logger } from "pino";
import type { Address } from "viem";
import { buildBackend, defaultCapacity } from "./backend-factory.js";
import type { EmbeddedModelFile } from "./backends/embedded.js";
import type { Backend, ModelInfo } from "./backends/types.js";
import { listBenchmarkRecords } from "./benchmark/benchmark-record.js";
import { setupHardwareSummary } from "./claim/hardware-summary.js";
import { createSetupController } from "./claim/setup-controller.js";
import { type SetupServer, startSetupServer } from "./claim/setup-server.js";
import {
  type BackendConfig,
  type GpuChoice,
  type GpuLayers,
  gatewayConfigSchema,
  type LinkMode,
  loadConfig,
  type NodeMode,
} from "./config.js";
import { detectBackends } from "./detect-backends.js";
import { type GatewayLink, startGatewayLink } from "./gateway-link.js";
import type { GpuStatus } from "./gpu/resolve-gpu.js";
import { probeHardware } from "./hardware.js";
import { loadNodeAccount } from "./identity.js";
import { gatewayPin } from "./link/gateway-pins.js";
import { type OutboundLink, startOutboundLink } from "./link/outbound-link.js";
import { embeddedModelFromManifestFile } from "./model-manifest-file.js";
import { createNetworkPolicy } from "./network/network-policy.js";
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
  /** How the node reaches the gateway (over the config's `link.mode`, default `auto`). */
  linkMode?: LinkMode;
  /** The gateway address the node requires (over the config's `link.gatewayAddress`; absent: pinned on first use). */
  gatewayAddress?: Address;
  /** The node's mode for this run (over the config's `node.mode`). */
  mode?: NodeMode;
  /** Unclaimed: also serve the setup page on this host (a LAN address), on its own listener. */
  setupHost?: string;
  /** Called once the node is claimed (setup mode ends; the link starts if a gateway is configured). */
  onClaimed?: (owner: Address) => void | Promise<void>;
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
  /** How the gateway reaches this node: over its public URL, or over the outbound link; null without a gateway. */
  reach: "direct" | "outbound" | null;
  /** The outbound link's connection, when it is the way (its state, the gateway at the other end). */
  outbound: OutboundLink | null;
  /** Network mode's limits, as one line (null outside network mode). */
  network: string | null;
  /** Setup mode (an unclaimed node): its claim code and where the setup page is; null once claimed. */
  setup: { code: string; node: Address; chainId: number; setupUrl: string; lanUrl: string | null } | null;
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
  let mode = parameters.mode ?? config.node.mode;
  let claimed = config.node.owners.length > 0;
  if (!claimed && mode !== "local" && parameters.mode === undefined) {
    // Setup mode is the way back from a config that asks for more than an unclaimed node may do.
    logger.warn(
      { mode },
      `the config asks for ${mode} mode, but the node is unclaimed: serving in setup mode (local) until an owner claims it`,
    );
    mode = "local";
  }
  if (!claimed && mode !== "local") {
    throw new GbtError(
      "CLAIM_REQUIRED",
      `An unclaimed node cannot serve in ${mode} mode: it has no owner yet.`,
      {
        details: { mode },
        hint: "Start it in local mode (`gbt serve --mode local`), claim it with `gbt owner claim CODE --key-file owner.key` (the code is in `gbt status`), then serve in this mode.",
      },
    );
  }
  if (!claimed && parameters.host !== undefined && !isLoopbackHost(parameters.host)) {
    throw new GbtError("CLAIM_REQUIRED", `An unclaimed node serves loopback only, not ${parameters.host}.`, {
      hint: "Claim it first (`gbt owner claim CODE --key-file owner.key`; the code is in `gbt status`), or show the setup page on the LAN with --setup-host.",
    });
  }
  const linkMode = parameters.linkMode ?? config.link?.mode ?? "auto";
  const gatewayAddress = parameters.gatewayAddress ?? config.link?.gatewayAddress;
  // Network mode's limits are checked before anything starts: a bad schedule fails now, with its place.
  let link: GatewayLink | null = null;
  const policy = createNetworkPolicy({
    capacity,
    config: config.network,
    mode,
    claimed: config.node.owners.length > 0,
    onChange: (open) => {
      logger.info(
        { open },
        open
          ? "network schedule open: offering pooled capacity"
          : "network schedule closed: draining pooled traffic (local traffic keeps working)",
      );
      link?.refresh();
    },
  });
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
    const setup = claimed
      ? undefined
      : createSetupController({
          paths,
          nodeAddress: config.node.address as Address,
          chainId: config.node.chainId,
          hardware: async () =>
            setupHardwareSummary(await probeHardware({ dataDir: paths.dataDir }), await detectBackends()),
          logger: logger.child({ component: "setup" }),
          // --setup-host: LAN peers too (on the setup listener; the node's own listener is loopback then).
          allowLan: parameters.setupHost !== undefined,
        });
    // The server starts before the link exists (the link needs the server's URL): it asks through this.
    const server = await startNodeServer({
      ...(setup ? { setup } : {}),
      pooledLimit: policy.pooledLimit,
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
    let outbound: OutboundLink | null = null;
    let reach: RunningNode["reach"] = null;
    /** The outbound link: the gateway's requests come to this server over the connection it dials. */
    const dialOut = (gatewayUrl: string, key: NonNullable<typeof account>) =>
      startOutboundLink({
        gatewayUrl,
        account: key,
        chainId: config.node.chainId,
        pin: gatewayPin(paths, gatewayUrl, gatewayAddress),
        accept: (connection) => server.acceptConnection(connection),
        logger: logger.child({ component: "outbound-link" }),
      });
    const startLink = () => {
      if (!account || !gatewayConfig || link !== null) return;
      reach = chooseReach(linkMode, gatewayConfig, server.url);
      if (reach === "outbound") {
        outbound = dialOut(gatewayConfig.url, account);
      } else if (gatewayAddress !== undefined) {
        logger.warn(
          { gatewayAddress },
          "--gateway-address is checked on outbound links only; this node is reached directly",
        );
      }
      const nodeUrl = reach === "outbound" ? LINK_NODE_URL : (gatewayConfig.publicUrl ?? server.url);
      if (
        reach === "direct" &&
        gatewayConfig.publicUrl === undefined &&
        /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(server.url)
      ) {
        logger.warn(
          { nodeUrl },
          "The gateway will be told this node's unspecified address; set --public-url (or gateway.publicUrl).",
        );
      }
      const linkOptions = {
        gatewayUrl: gatewayConfig.url,
        account,
        nodeUrl,
        capacity: policy.offeredCapacity,
        chainId: config.node.chainId,
        ...(outbound ? { carrier: outbound } : {}),
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
      };
      link = startGatewayLink({
        ...linkOptions,
        ...(reach === "direct" && linkMode === "auto"
          ? {
              // auto: the gateway checks that it reaches this URL before it routes anything here.
              probe: true,
              // auto: a URL the gateway will not reach means this node is behind NAT after all.
              onUrlRefused: (reason: string) => {
                logger.warn(
                  { reason },
                  "the gateway will not reach this node's URL; joining over an outbound link instead (no open port needed)",
                );
                const direct = link;
                reach = "outbound";
                outbound = dialOut(gatewayConfig.url, account);
                link = startGatewayLink({ ...linkOptions, nodeUrl: LINK_NODE_URL, carrier: outbound });
                running.link = link;
                running.reach = reach;
                running.outbound = outbound;
                void direct?.stop();
              },
            }
          : {}),
      });
    };
    // An unclaimed node takes no pooled traffic: it joins its gateway once an owner claims it.
    if (claimed) startLink();
    let setupServer: SetupServer | null = null;
    let setupInfo: RunningNode["setup"] = null;
    if (setup) {
      const state = await setup.state();
      if (parameters.setupHost !== undefined) {
        setupServer = await startSetupServer({ setup, host: parameters.setupHost, port: 0, logger });
      }
      setupInfo = {
        code: state.code ?? "",
        node: config.node.address as Address,
        chainId: config.node.chainId,
        setupUrl: `${server.url}/setup`,
        lanUrl: setupServer ? `${setupServer.url}/setup` : null,
      };
      setup.onClaimed((owner) => void claimedBy(owner));
    }
    async function claimedBy(owner: Address): Promise<void> {
      if (claimed) return;
      claimed = true;
      logger.info({ owner }, "claimed: setup mode ends");
      running.setup = null;
      await setupServer?.close().catch(() => undefined);
      setupServer = null;
      await parameters.onClaimed?.(owner);
      startLink();
      running.link = link;
      running.reach = reach;
      running.outbound = outbound;
    }
    const running: RunningNode = {
      server,
      backend,
      models,
      backendConfig,
      ...(gpu ? { gpu } : {}),
      requireApiKey,
      link,
      reach,
      outbound,
      network: mode === "network" ? policy.describe() : null,
      setup: setupInfo,
      async close(deadlineMs = 10_000) {
        policy.stop();
        await setupServer?.close().catch(() => undefined);
        await link?.stop();
        // In-flight answers finish over the link before it closes.
        await server.close(deadlineMs);
        await outbound?.stop(500);
        await backend.close();
        db.close();
      },
    };
    return running;
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

/**
 * How the gateway will reach this node. `auto`: directly when the node gives a public URL, or when
 * the gateway and the node share this machine's loopback (gbt up, a node beside its gateway);
 * otherwise over the outbound link, which needs no open port.
 */
function chooseReach(
  linkMode: LinkMode,
  gateway: { url: string; publicUrl?: string | undefined },
  serverUrl: string,
): "direct" | "outbound" {
  if (linkMode !== "auto") return linkMode;
  if (gateway.publicUrl !== undefined) return "direct";
  const host = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, "");
  return isLoopbackHost(host(gateway.url)) && isLoopbackHost(host(serverUrl)) ? "direct" : "outbound";
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
