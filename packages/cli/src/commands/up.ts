import { join } from "node:path";
import { sendFirstRequest, startLocalNetwork } from "@gbt/devnet";
import { resolvePaths, TEST_MODEL_ID } from "@gbt/node";
import { Flags } from "@oclif/core";
import pino from "pino";
import { GbtCommand } from "../gbt-command.js";
import { runUntilSignal } from "../wait-for-signal.js";

export default class Up extends GbtCommand {
  static override summary =
    "Start a local gbt network: a gateway and N nodes, a key, and one request through it.";

  static override description =
    `Runs a gateway on 127.0.0.1:8080 and --nodes nodes (3 by default) on the embedded llama.cpp backend with gbt-test-tiny, the generated pipeline-test model (real compute, noise text). Each node has its own identity and joins the gateway through the real signed link; requests are routed to the least-loaded node, billed from the node's signed receipt, and settled in the gateway's ledger. Ramp-up is off on this local network.

gbt up then creates an API key (5.00 credits on the gbt-up account), sends one streamed request through the gateway, prints the base URL and the key, and stays up until Ctrl-C. Point any OpenAI client at the base URL. State lives in <gbt data dir>/up (or --dir), so keys and the ledger survive restarts.

With the chain (the default; --no-chain skips it), gbt up also runs anvil with the gbt contracts, funds and stakes every node (1,000 GBT), and settles the nodes' cumulative earnings on chain every --epoch seconds (and once right after the first request). Each node's home (<dir>/node-N) gets a chain.json, so \`GBT_HOME=<dir>/node-1 gbt payout claim\` claims its GBT. The chain lives in memory: a restart deploys afresh.`;

  static override examples = [
    { description: "Start it", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Then, from another terminal (use the key it printed)",
      command: `curl -N http://127.0.0.1:8080/v1/chat/completions -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"model":"gbt-test-tiny","stream":true,"messages":[{"role":"user","content":"Hi"}]}'`,
    },
    {
      description: "Five nodes on another port, as JSON for scripts",
      command: "<%= config.bin %> <%= command.id %> --nodes 5 --port 9090 --json",
    },
  ];

  static override flags = {
    nodes: Flags.integer({ description: "Nodes to start (1–16).", default: 3, min: 1, max: 16 }),
    port: Flags.integer({
      description: "Gateway port (0 picks a free one).",
      default: 8080,
      min: 0,
      max: 65_535,
    }),
    threads: Flags.integer({ description: "llama.cpp threads per node.", default: 1, min: 1, max: 64 }),
    capacity: Flags.integer({ description: "Parallel requests per node (default 4).", min: 1, max: 256 }),
    dir: Flags.string({ description: "State directory (default: <gbt data dir>/up)." }),
    chain: Flags.boolean({
      description:
        "Run a dev chain (anvil) with the gbt contracts: nodes staked, earnings settled each epoch (--no-chain to skip).",
      default: true,
      allowNo: true,
    }),
    epoch: Flags.integer({
      description: "Seconds between settlement epochs on the dev chain.",
      default: 60,
      min: 1,
    }),
    "log-level": Flags.string({
      description: "Log level on stderr.",
      options: ["fatal", "error", "warn", "info", "debug", "silent"],
      default: "warn",
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    const logger = pino({ level: flags["log-level"], base: null }, pino.destination(2));
    const json = this.jsonEnabled();
    const progress = (message: string) => {
      if (!json) process.stderr.write(`  ${message}\n`);
    };
    if (!json) process.stderr.write("gbt up: starting a local network\n");
    const network = await startLocalNetwork({
      dir: flags.dir ?? join(resolvePaths().dataDir, "up"),
      nodes: flags.nodes,
      port: flags.port,
      threads: flags.threads,
      ...(flags.capacity !== undefined ? { capacity: flags.capacity } : {}),
      logger,
      onProgress: progress,
      ...(flags.chain ? { chain: { epochSeconds: flags.epoch } } : {}),
    });
    const first = await sendFirstRequest(network, TEST_MODEL_ID);
    await network.gateway.settled();
    const balance = network.gateway.accounts.getAccount(network.accountId).balanceMicro / 1_000_000;
    // Settle the first request's earnings at once, so the whole loop is visible from the start.
    const firstEpoch = await network.chain?.settlement.settleNow().catch((error: unknown) => {
      logger.warn({ err: error }, "first settlement epoch failed");
      return undefined;
    });
    const chainInfo = network.chain
      ? {
          rpcUrl: network.chain.chain.rpcUrl,
          chainId: network.chain.chain.deployment.chainId,
          contracts: network.chain.chain.deployment,
          epochSeconds: flags.epoch,
          firstEpoch: firstEpoch ?? null,
        }
      : null;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({
          event: "up",
          baseUrl: network.baseUrl,
          apiKey: network.apiKey,
          model: TEST_MODEL_ID,
          nodes: network.nodes.map((node) => node.server.url),
          firstRequest: { tokens: first.tokens, ms: Math.round(first.ms), text: first.text },
          balance,
          chain: chainInfo,
        })}\n`,
      );
    } else {
      process.stderr.write(
        `  first request: ${first.tokens} tokens in ${Math.round(first.ms)} ms through the gateway: ${JSON.stringify(first.text.slice(0, 60))}…\n` +
          "  (gbt-test-tiny is the pipeline-test model: real compute, noise text)\n\n",
      );
      process.stdout.write(
        `Base URL  ${network.baseUrl}\nAPI key   ${network.apiKey}\nModel     ${TEST_MODEL_ID}\nBalance   ${balance.toFixed(6)} credits\n\n` +
          `Try:\n  curl -N ${network.baseUrl}/chat/completions -H "authorization: Bearer ${network.apiKey}" \\\n` +
          `    -H 'content-type: application/json' -d '{"model":"${TEST_MODEL_ID}","stream":true,"messages":[{"role":"user","content":"Hi"}]}'\n\n` +
          (chainInfo
            ? `Chain     ${chainInfo.rpcUrl} (Settlement ${chainInfo.contracts.settlement}, epochs every ${flags.epoch} s${firstEpoch?.posted ? `; epoch ${firstEpoch.epoch} posted` : ""})\n` +
              `Payouts   GBT_HOME=${join(flags.dir ?? join(resolvePaths().dataDir, "up"), "node-1")} gbt payout claim --yes\n\n`
            : "") +
          "See the pool: gbt gateway nodes" +
          (flags.port !== 8080 ? ` --url ${network.gateway.url}` : "") +
          "\n" +
          "Ctrl-C stops the network.\n",
      );
    }
    await runUntilSignal(async () => {
      if (!json) process.stderr.write("gbt up: stopping\n");
      await network.close(5_000);
    });
    if (json) process.stdout.write(`${JSON.stringify({ event: "stopped" })}\n`);
    logger.flush();
  }
}
