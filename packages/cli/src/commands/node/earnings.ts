import { Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { type NodeEarningsResult, readNodeEarnings, renderNodeEarnings } from "../../node-earnings.js";

export default class NodeEarnings extends GbtCommand {
  static override summary =
    "Show what this node earned: today, the last 7 days, this epoch and all time, with the multipliers applied and what is settled and claimable.";
  static override description =
    "Reads the gateway's signed earnings view (GET /v1/nodes/:node/earnings) from the gateway this node is linked to (gateway.url in the node config, or --gateway) and refuses it unless it is signed by the gateway's key (the one the node config pins, else the one GET /v1/gateway/info names) and addressed to this node. Requests, tokens and credits are the gateway ledger's; settled, paid and claimable amounts are the chain's (chain.json), read without unlocking the node key.";
  static override examples = [
    {
      description: "This week's earnings and what is claimable",
      command: "<%= config.bin %> <%= command.id %>",
    },
    {
      description: "This week's credits, for scripts",
      command: "<%= config.bin %> <%= command.id %> --json | jq .earnings.periods.week.earnedMicro",
    },
  ];
  static override flags = {
    gateway: Flags.string({ description: "Gateway base URL (default: gateway.url of the node config)." }),
    node: Flags.string({ description: "Node address (default: this node's, from the node config)." }),
    "rpc-url": Flags.string({ description: "Chain RPC URL (default: the one in chain.json)." }),
    chain: Flags.boolean({
      description:
        "Read settled, paid and claimable amounts from the chain (--no-chain: the gateway's view only).",
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<NodeEarningsResult> {
    const { flags } = await this.parse(NodeEarnings);
    const result = await readNodeEarnings({
      gatewayUrl: flags.gateway,
      node: flags.node,
      rpcUrl: flags["rpc-url"],
      chain: flags.chain,
    });
    this.out(renderNodeEarnings(result));
    return result;
  }
}
