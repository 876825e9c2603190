import { DEFAULT_PORT, resolvePaths, startServe } from "@gbt/node";
import { Flags } from "@oclif/core";
import pino from "pino";
import { GbtCommand } from "../gbt-command.js";

export default class Serve extends GbtCommand {
  static override summary = "Serve inference on this node through an OpenAI-compatible HTTP API.";

  static override description =
    `Starts the node server on ${"127.0.0.1"}:${DEFAULT_PORT} by default: GET /v1/models, POST /v1/chat/completions (streamed as SSE or whole, with usage), GET /healthz, GET /metrics (Prometheus).

The backend is the one chosen by \`gbt setup\`. On the embedded backend with no model configured, gbt serves gbt-test-tiny, a generated pipeline-test model (real llama.cpp compute; its text is noise); give --model path/to/model.gguf for real answers.

On a non-loopback --host every request needs an API key (\`gbt keys create\`). Over capacity the node answers 429 with Retry-After. SIGINT/SIGTERM stop accepting, finish in-flight requests up to --shutdown-timeout, and exit 0. Logs (pino JSON) go to stderr; with --json, stdout carries JSON lines: a "listening" event, then a "stopped" event.`;

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
    "require-api-key": Flags.boolean({ description: "Require an API key even on loopback." }),
    "shutdown-timeout": Flags.integer({
      description: "Seconds to let in-flight requests finish on SIGINT/SIGTERM.",
      default: 10,
      min: 0,
    }),
    "log-level": Flags.string({
      description: "Log level on stderr.",
      options: ["fatal", "error", "warn", "info", "debug", "silent"],
      default: "info",
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const logger = pino({ level: flags["log-level"], base: { service: "gbt-node" } }, pino.destination(2));
    const node = await startServe({
      paths: resolvePaths(),
      logger,
      ...(flags.host !== undefined ? { host: flags.host } : {}),
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(flags.model !== undefined ? { model: flags.model } : {}),
      ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
      ...(flags.capacity !== undefined ? { capacity: flags.capacity } : {}),
      requireApiKey: flags["require-api-key"],
    });
    const models = node.models.map((m) => m.id);
    if (this.jsonEnabled()) {
      process.stdout.write(
        `${JSON.stringify({ event: "listening", url: node.server.url, backend: node.backendConfig.kind, models, requireApiKey: node.requireApiKey })}\n`,
      );
    } else {
      process.stderr.write(
        `gbt serve: listening on ${node.server.url}  (backend ${node.backend.kind}, models: ${models.join(", ") || "none"}${node.requireApiKey ? ", API key required" : ""})\n` +
          (models.includes("gbt-test-tiny")
            ? "  gbt-test-tiny is the generated pipeline-test model: real compute, noise text. Use --model for a real one.\n"
            : "") +
          `  Try: curl ${node.server.url}/v1/models\n  Ctrl-C stops.\n`,
      );
    }
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second Ctrl-C: stop waiting for in-flight work.
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, inFlight: node.server.inFlight() }, "shutting down");
      node
        .close(flags["shutdown-timeout"] * 1000)
        .catch((error) => logger.error({ err: error }, "error during shutdown"))
        .finally(() => done());
    };
    let done: () => void = () => {};
    // process.on (not once), and kept until the drain ends: signal-exit, pulled in by dependencies,
    // re-raises a signal when it finds itself the last listener, which would kill us mid-drain.
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    await new Promise<void>((resolve) => {
      done = resolve;
    });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ event: "stopped" })}\n`);
    logger.flush();
  }
}
