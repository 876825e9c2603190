import {
  createNodeLogger,
  DEFAULT_PORT,
  ensureNodeModels,
  type GpuChoice,
  nodeLogFile,
  probeHardware,
  readConfigIfPresent,
  resolveGpu,
  resolvePaths,
  startNode,
} from "@gbt/node";
import { GbtError } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { type Address, getAddress, isAddress } from "viem";
import { GbtCommand } from "../gbt-command.js";
import { gpuFlags, gpuOptions } from "../gpu-flags.js";
import { passphraseFromFlags } from "../terminal-input.js";
import { runUntilSignal, serverLifecycleFlags } from "../wait-for-signal.js";

export default class Serve extends GbtCommand {
  static override summary = "Serve inference on this node through an OpenAI-compatible HTTP API.";

  static override description =
    `Starts the node server on ${"127.0.0.1"}:${DEFAULT_PORT} by default: GET /v1/models, POST /v1/chat/completions (streamed as SSE or whole, with usage), GET /healthz, GET /metrics (Prometheus).

The backend is the one chosen by \`gbt setup\`. On the embedded backend with no model configured, gbt serves gbt-test-tiny, a generated pipeline-test model (real llama.cpp compute; its text is noise); give --model path/to/model.gguf for real answers.

Owners' signed jobs (\`gbt job create\`, \`gbt job submit\`) reach the node agent at POST /agent/jobs and GET /agent/jobs/:id, on a loopback host only; the job's signature is their authentication, and every outcome goes to the audit log (\`gbt agent audit\`).

On a non-loopback --host every request needs an API key (\`gbt keys create\`). Over capacity the node answers 429 with Retry-After. SIGINT/SIGTERM stop accepting, finish in-flight requests up to --shutdown-timeout, and exit 0. Logs (pino JSON) go to stderr and to <data dir>/logs/node.log (0600, rotated at 16 MiB; secrets redacted; read by logs.tail jobs); with --json, stdout carries JSON lines: a "listening" event, then a "stopped" event.`;

  static override examples = [
    {
      description: "Serve the embedded default on 127.0.0.1:8787",
      command: "<%= config.bin %> <%= command.id %>",
    },
    {
      description: "Serve a real GGUF model with 8 threads and 4 parallel requests",
      command:
        "<%= config.bin %> <%= command.id %> --model ~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf --threads 8 --capacity 4",
    },
    {
      description: "Serve the LAN (requires an API key)",
      command: "<%= config.bin %> keys create laptop && <%= config.bin %> <%= command.id %> --host 0.0.0.0",
    },
    {
      description: "Join a gateway's pool",
      command: "<%= config.bin %> <%= command.id %> --gateway http://127.0.0.1:8080",
    },
    {
      description: "Ask it something",
      command: `curl -N http://127.0.0.1:${DEFAULT_PORT}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"gbt-test-tiny","stream":true,"messages":[{"role":"user","content":"Hi"}]}'`,
    },
  ];

  static override flags = {
    host: Flags.string({
      description: "Address to listen on (default 127.0.0.1; anything else requires API keys).",
    }),
    port: Flags.integer({
      description: `Port to listen on (default ${DEFAULT_PORT}; 0 picks a free one).`,
      min: 0,
      max: 65_535,
    }),
    model: Flags.string({
      description: "Model to serve: a GGUF path or id (embedded), an Ollama tag or a server model id.",
      exclusive: ["models"],
    }),
    models: Flags.string({
      helpValue: "SOURCE,…",
      description:
        "Pull what is missing of these models, then serve them all (the first is the default): registry references NAME@VERSION (the gateway's signed manifest; every byte checked against it, and its VRAM band against this node), hf:OWNER/REPO/FILE.gguf, ids already in the models dir, or Ollama names on the Ollama backend. See `gbt model pull`.",
      exclusive: ["model", "manifest"],
    }),
    "allow-loopback-http": Flags.boolean({
      hidden: true,
      description: "With --models: let artifacts come over plain http from loopback (tests, a local mirror).",
      dependsOn: ["models"],
    }),
    threads: Flags.integer({
      description: "llama.cpp threads (embedded backend); default is safe for this machine.",
      min: 1,
      max: 256,
    }),
    capacity: Flags.integer({
      description:
        "Requests generated at once before answering 429 (default 4). On a CPU they share the cores.",
      min: 1,
      max: 256,
    }),
    ...gpuFlags,
    "require-api-key": Flags.boolean({ description: "Require an API key even on loopback." }),
    gateway: Flags.string({
      description:
        "Gateway URL to join: the node registers (signed), heartbeats every 10 s, and serves the gateway's pooled traffic with a signed usage receipt per request. Saved nowhere; set gateway.url in config.json to make it permanent.",
    }),
    manifest: Flags.string({
      helpValue: "FILE",
      description:
        "Serve the model of this signed manifest (`gbt model publish --dry-run --out FILE`): its signature is checked, and its GGUF's sha256 before it loads (embedded backend).",
    }),
    publisher: Flags.string({
      helpValue: "ADDRESS",
      multiple: true,
      description: "With --manifest: accept only manifests signed by these publishers.",
      dependsOn: ["manifest"],
    }),
    "public-url": Flags.string({
      description:
        "URL the gateway uses to reach this node. Without one the node joins over an outbound link (no open port needed), unless the gateway is on this machine's loopback.",
    }),
    link: Flags.string({
      options: ["auto", "outbound", "direct"],
      description:
        "How the gateway reaches this node (config link.mode): outbound (the node dials the gateway and everything travels over that one connection: works behind NAT, no port forwarding), direct (the gateway connects to --public-url), auto (default: direct with a --public-url or a gateway on loopback, else outbound).",
    }),
    "gateway-address": Flags.string({
      helpValue: "0x…",
      description:
        "The gateway's address (its key) this node requires on an outbound link (config link.gatewayAddress); without it the address is pinned on first use, and a gateway signing with another key later is refused.",
    }),
    "setup-host": Flags.string({
      helpValue: "HOST",
      description:
        "While the node is unclaimed: also show its setup page (claim code, hardware scan, paste a signed claim) on this address, e.g. the LAN's 192.168.1.20 (the node itself stays on loopback until claimed).",
    }),
    mode: Flags.string({
      options: ["local", "managed", "network"],
      description:
        "local (this machine; its own gateway only), managed (signed jobs from owners), network (offers capacity to the open pool, within network.schedule, network.maxShare and network.maxConcurrent; needs an owner and the gateway's minimum stake). Default: the config's node.mode.",
    }),
    "passphrase-file": Flags.string({
      description:
        "File holding the node key's passphrase (else GBT_PASSPHRASE); needed with --gateway when the key is encrypted, and to unlock a cloud backend's encrypted API key.",
    }),
    ...serverLifecycleFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const paths = resolvePaths();
    // Logs go to stderr and to the node's log file, which logs.tail jobs read.
    const logger = createNodeLogger({
      level: flags["log-level"],
      service: "gbt-node",
      file: nodeLogFile(paths),
    });
    const passphrase = await passphraseFromFlags({ passphraseFile: flags["passphrase-file"] });
    const ensured = flags.models !== undefined ? await this.pullModels(flags, paths) : [];
    const [first, ...rest] = ensured;
    const node = await startNode({
      paths,
      logger,
      ...(flags.gateway !== undefined ? { gatewayUrl: flags.gateway } : {}),
      ...(flags["public-url"] !== undefined ? { publicUrl: flags["public-url"] } : {}),
      ...(flags.link !== undefined ? { linkMode: flags.link as "auto" | "outbound" | "direct" } : {}),
      ...(flags["gateway-address"] !== undefined
        ? { gatewayAddress: addressFlag("--gateway-address", flags["gateway-address"]) }
        : {}),
      ...(flags.mode !== undefined ? { mode: flags.mode as "local" | "managed" | "network" } : {}),
      ...(flags["setup-host"] !== undefined ? { setupHost: flags["setup-host"] } : {}),
      onClaimed: (owner) => {
        if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ event: "claimed", owner })}\n`);
        else
          process.stderr.write(
            `gbt serve: claimed by ${owner}: setup mode ends (a configured gateway is joined now).\n`,
          );
      },
      ...(passphrase !== undefined ? { passphrase } : {}),
      ...(flags.host !== undefined ? { host: flags.host } : {}),
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(flags.model !== undefined ? { model: flags.model } : {}),
      ...(first !== undefined ? { model: first.path ?? first.id } : {}),
      ...(flags.manifest !== undefined
        ? {
            modelManifest: {
              file: flags.manifest,
              ...(flags.publisher ? { publishers: flags.publisher.map(publisherAddress) } : {}),
            },
          }
        : {}),
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
      ...(flags.capacity !== undefined ? { capacity: flags.capacity } : {}),
      ...gpuOptions(flags),
      requireApiKey: flags["require-api-key"],
    });
    // The other pulled models join the first; the gateway link registers them on its next round.
    for (const model of rest) if (model.path !== null) node.backend.addModelFile?.(model.id, model.path);
    const models = [...new Set([...node.models.map((m) => m.id), ...rest.map((m) => m.id)])];
    const setup = node.setup;
    if (this.jsonEnabled()) {
      process.stdout.write(
        `${JSON.stringify({ event: "listening", claimed: setup === null, url: node.server.url, backend: node.backendConfig.kind, ...(node.gpu ? { gpu: node.gpu } : {}), models, requireApiKey: node.requireApiKey, gateway: node.link ? (flags.gateway ?? "config") : null, reach: node.reach, network: node.network })}\n`,
      );
      if (setup) process.stdout.write(`${JSON.stringify({ event: "setup", claimed: false, ...setup })}\n`);
    } else {
      if (setup) process.stderr.write(setupBanner(setup));
      process.stderr.write(
        `gbt serve: listening on ${node.server.url}  (backend ${node.backend.kind}, models: ${models.join(", ") || "none"}${node.requireApiKey ? ", API key required" : ""})\n` +
          (models.includes("gbt-test-tiny")
            ? "  gbt-test-tiny is the generated pipeline-test model: real compute, noise text. Use --model for a real one.\n"
            : "") +
          (node.link
            ? node.reach === "outbound"
              ? "  Joining the gateway over an outbound link (no open port needed): signed registration, then heartbeats every 10 s, all over one connection.\n"
              : "  Joining the gateway in the background (signed registration, then heartbeats every 10 s).\n"
            : "") +
          (node.network ? `  ${node.network}\n` : "") +
          (node.agent !== "off"
            ? `  agent: POST /agent/jobs (signed jobs from owners${node.agent === "served" ? "" : "; not served on this non-loopback host"})\n`
            : "  agent: off (the node key is encrypted; give --passphrase-file or GBT_PASSPHRASE to take signed jobs)\n") +
          (node.gpu ? `  ${node.gpu.summary}\n` : "") +
          `  Try: curl ${node.server.url}/v1/models\n  Ctrl-C stops.\n`,
      );
    }
    await runUntilSignal(async (signal) => {
      logger.info({ signal, inFlight: node.server.inFlight() }, "shutting down");
      await node
        .close(flags["shutdown-timeout"] * 1000)
        .catch((error) => logger.error({ err: error }, "error during shutdown"));
    });
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ event: "stopped" })}\n`);
    logger.flush();
  }

  /** `--models`: pulls what is missing (progress on stderr), checking VRAM bands against the GPU this node will use. */
  private async pullModels(
    flags: {
      models?: string | undefined;
      gateway?: string | undefined;
      gpu?: string | undefined;
      "allow-loopback-http"?: boolean | undefined;
    },
    paths: ReturnType<typeof resolvePaths>,
  ) {
    const sources = (flags.models ?? "")
      .split(",")
      .map((source) => source.trim())
      .filter((source) => source !== "");
    if (sources.length === 0) this.error("--models needs at least one model.", { exit: 2 });
    const config = await readConfigIfPresent(paths.configFile);
    const choice = (flags.gpu ?? config?.backend.gpu ?? "auto") as GpuChoice;
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error("interrupted"));
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    let last = "";
    try {
      const ensured = await ensureNodeModels(sources, {
        paths,
        ...(flags.gateway !== undefined ? { gatewayUrl: flags.gateway } : {}),
        ...(flags["allow-loopback-http"] ? { allowLoopbackHttp: true } : {}),
        signal: controller.signal,
        vramMiB: async () => {
          const gpu = await resolveGpu({
            choice,
            gpus: (await probeHardware({ dataDir: paths.dataDir })).gpus,
          });
          return gpu.backend === "cpu" ? 0 : gpu.vramTotalMB;
        },
        onNote: (message) => process.stderr.write(`gbt serve: ${message}\n`),
        onProgress: (progress) => {
          const line = `gbt serve: ${progress.id}: ${progress.phase}${
            progress.phase === "download" && progress.totalBytes
              ? ` ${Math.floor((100 * progress.bytes) / progress.totalBytes)}%`
              : ""
          }`;
          // One line per phase and per 10% of a download: readable in a log, not a flood.
          const key = line.replace(/(\d)\d%$/, "$1");
          if (key !== last) process.stderr.write(`${line}\n`);
          last = key;
        },
      });
      for (const model of ensured) {
        process.stderr.write(
          `gbt serve: ${model.id} ${model.pulled ? `pulled (${model.result.bytes} bytes, sha256 ${model.result.sha256 ?? "n/a"})` : "already here"}\n`,
        );
      }
      return ensured;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }
}

/** What an unclaimed node shows: its code, and the two ways to claim it. */
function setupBanner(setup: {
  code: string;
  node: string;
  chainId: number;
  setupUrl: string;
  lanUrl: string | null;
}): string {
  return (
    `gbt serve: this node is unclaimed. Claim code: ${setup.code}\n` +
    `  It serves loopback only and joins no pool until an owner claims it.\n` +
    `  On the owner's machine:  gbt owner claim ${setup.code} --key-file owner.key --node ${setup.setupUrl.replace(/\/setup$/, "")}\n` +
    `  Or open ${setup.lanUrl ?? setup.setupUrl} and paste a claim made with\n` +
    `    gbt owner claim ${setup.code} --key-file owner.key --print --node-address ${setup.node} --chain-id ${setup.chainId}\n`
  );
}

function publisherAddress(value: string): Address {
  return addressFlag("--publisher", value);
}

function addressFlag(flag: string, value: string): Address {
  if (!isAddress(value, { strict: false })) {
    throw new GbtError("INVALID_ADDRESS", `${flag} ${value} is not an address.`, {
      hint: "Give a 0x-prefixed 20-byte address.",
    });
  }
  return getAddress(value);
}
