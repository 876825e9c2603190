import { loadConfig, resolvePaths } from "@gbt/node";
import { createGatewayClient, GbtError, type NodeTrust } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";

export default class NodeStatus extends GbtCommand {
  static override summary =
    "Show how the gateway rates this node: trust tier, reputation and the evidence behind them.";
  static override description =
    "Reads GET /v1/gateway/nodes/:address/trust from the gateway this node is linked to (gateway.url in the config written by `gbt setup`, or --gateway). No admin token is needed: a node's standing is public. Tiers: community (benchmarked, reputation), verified (runtime version and model digests reported, latest canary passed, no fraud evidence in 14 days); attested is never shown without confidential-compute evidence.";
  static override examples = [
    { description: "This node's standing", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Another node, on a given gateway, for scripts",
      command:
        "<%= config.bin %> <%= command.id %> --gateway https://gw.example --node 0xabc… --json | jq -r .tier",
    },
  ];
  static override flags = {
    gateway: Flags.string({ description: "Gateway base URL (default: gateway.url of the node config)." }),
    node: Flags.string({ description: "Node address (default: this node's, from the node config)." }),
  };

  async run(): Promise<NodeTrust> {
    const { flags } = await this.parse(NodeStatus);
    let gatewayUrl = flags.gateway;
    let node = flags.node;
    if (gatewayUrl === undefined || node === undefined) {
      const config = await loadConfig(resolvePaths().configFile);
      gatewayUrl ??= config.gateway?.url;
      node ??= config.node.address;
    }
    if (gatewayUrl === undefined) {
      throw new GbtError("MISSING_INPUT", "This node has no gateway configured.", {
        hint: "Pass --gateway URL, or link the node with `gbt serve --gateway URL`.",
      });
    }
    if (!/^0x[0-9a-fA-F]{40}$/.test(node)) {
      throw new GbtError(
        "INVALID_ADDRESS",
        `--node must be a 0x-prefixed 20-byte address, got "${node.slice(0, 50)}".`,
      );
    }
    const trust = await createGatewayClient({
      url: gatewayUrl,
      hints: {
        unreachable: "Check the gateway URL (--gateway, or gateway.url in the node config) and that it runs.",
      },
    }).getNodeTrust(node);
    const when = (at: number) => new Date(at).toISOString();
    const lines = [
      `Node        ${trust.id}`,
      `Gateway     ${gatewayUrl}`,
      `Tier        ${trust.tier}`,
      `Reputation  ${trust.reputation.toFixed(3)} (0–1; 0.5 is a node without history)`,
      `Challenges  ${trust.challenges.passed} passed, ${trust.challenges.failed} failed, ${trust.challenges.errors} without verdict (14 days)`,
      `Canary      ${trust.challenges.lastCanary ? `${trust.challenges.lastCanary.outcome} at ${when(trust.challenges.lastCanary.at)}` : "none yet"}`,
      `Throughput  ${
        trust.challenges.lastBenchmark
          ? `${trust.challenges.lastBenchmark.outcome}${trust.challenges.lastBenchmark.measuredTokPerSec !== null ? ` (${trust.challenges.lastBenchmark.measuredTokPerSec.toFixed(1)} tok/s measured)` : ""} at ${when(trust.challenges.lastBenchmark.at)}`
          : trust.benchmarked
            ? "not measured yet"
            : "no signed benchmark (run `gbt node benchmark`)"
      }`,
      `Evidence    ${trust.evidence.length === 0 ? "none" : trust.evidence.join(", ")}`,
      ...trust.reasons.map((reason, i) => `${i === 0 ? "Not higher " : "           "} ${reason}`),
    ];
    this.out(lines.join("\n"));
    return trust;
  }
}
