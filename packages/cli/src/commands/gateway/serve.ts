import { adminTokenPath, startGateway } from "@gbt/gateway";
import { Flags } from "@oclif/core";
import { gatewayPathFlags, gatewayPaths } from "../../gateway-paths.js";
import { GbtCommand } from "../../gbt-command.js";
import { runUntilSignal, serverLifecycleFlags, stderrLogger } from "../../wait-for-signal.js";

export default class GatewayServe extends GbtCommand {
  static override summary = "Run the gateway: one OpenAI-compatible endpoint over every registered node.";

  static override description =
    `Consumers call POST /v1/chat/completions (streamed or whole) and GET /v1/models with an API key (\`gbt gateway keys create\`); the gateway routes each request to the node with the most spare capacity, holds credits from max_tokens before routing, and settles every request in its SQLite ledger from the node's signed usage receipt.

Nodes join with \`gbt serve --gateway URL\`: a signed registration, then a signed heartbeat every 10 s. Admins read GET /v1/gateway/nodes (state, load, breaker, health, ramp-up) with the admin token kept in <data dir>/admin-token (or GBT_GATEWAY_ADMIN_TOKEN). GET /metrics serves Prometheus metrics; logs (pino JSON) go to stderr.

Settings (prices per model, provider share, routing timeouts) come from gateway.json in the gbt config dir; every one has a default. The gateway key is created on first start in the data dir (encrypted when GBT_GATEWAY_PASSPHRASE is set). SIGINT/SIGTERM finish in-flight requests and settle them before exiting.`;

  static override examples = [
    { description: "Run a gateway on 127.0.0.1:8080", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Create a consumer key, then call it with curl",
      command: `<%= config.bin %> gateway keys create alice --json | jq -r .key.key`,
    },
    {
      description: "See the pool (admin)",
      command: `curl -H "authorization: Bearer $(cat ~/.local/share/gbt/gateway/admin-token)" http://127.0.0.1:8080/v1/gateway/nodes`,
    },
  ];

  static override flags = {
    host: Flags.string({ description: "Address to listen on (default 127.0.0.1)." }),
    port: Flags.integer({
      description: "Port to listen on (default 8080; 0 picks a free one).",
      min: 0,
      max: 65_535,
    }),
    ...gatewayPathFlags,
    ...serverLifecycleFlags,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(GatewayServe);
    const logger = stderrLogger(flags["log-level"], "gbt-gateway");
    const paths = gatewayPaths(flags);
    const gateway = await startGateway({
      ...paths,
      logger,
      ...(flags.host !== undefined ? { host: flags.host } : {}),
      ...(flags.port !== undefined ? { port: flags.port } : {}),
      ...(process.env.GBT_GATEWAY_PASSPHRASE ? { passphrase: process.env.GBT_GATEWAY_PASSPHRASE } : {}),
      ...(process.env.GBT_GATEWAY_ADMIN_TOKEN ? { adminToken: process.env.GBT_GATEWAY_ADMIN_TOKEN } : {}),
    });
    if (this.jsonEnabled()) {
      process.stdout.write(
        `${JSON.stringify({ event: "listening", url: gateway.url, address: gateway.address, chainId: gateway.config.chainId, dataDir: paths.dataDir })}\n`,
      );
    } else {
      process.stderr.write(
        `gbt gateway: listening on ${gateway.url}  (gateway address ${gateway.address}, chain ${gateway.config.chainId})\n` +
          `  Nodes join with: gbt serve --gateway ${gateway.url}\n` +
          `  Consumer keys:   gbt gateway keys create NAME${flags["data-dir"] ? ` --data-dir ${paths.dataDir}` : ""}\n` +
          `  Admin token:     ${process.env.GBT_GATEWAY_ADMIN_TOKEN ? "from GBT_GATEWAY_ADMIN_TOKEN" : adminTokenPath(paths.dataDir)}\n  Ctrl-C stops.\n`,
      );
    }
    await runUntilSignal(async (signal) => {
      logger.info({ signal }, "shutting down");
      await gateway
        .close(flags["shutdown-timeout"] * 1000)
        .catch((error) => logger.error({ err: error }, "error during shutdown"));
    });
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ event: "stopped" })}\n`);
    logger.flush();
  }
}
