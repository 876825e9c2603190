import type { GatewayNode } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { renderTable } from "../../format.js";
import { adminGatewayClient, gatewayAdminToken, gatewayPathFlags } from "../../gateway-paths.js";
import { GbtCommand } from "../../gbt-command.js";

export default class GatewayNodes extends GbtCommand {
  static override summary =
    "Show the gateway's pool: each node's state, load, breaker, health, ramp-up and trust tier.";
  static override description =
    "Reads GET /v1/gateway/nodes from a running gateway with its admin token (from GBT_GATEWAY_ADMIN_TOKEN, else <data dir>/admin-token of `gbt gateway serve` or of `gbt up`). A node is eligible when it is active (heartbeats arriving), its breaker admits requests, it is above the 5 tok/s floor and it has a free slot. TIER and REP are the node's trust tier and reputation from the gateway's verification (`gbt gateway evidence list` shows the evidence behind them).";
  static override examples = [
    { description: "The local gateway's pool as a table", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Nodes whose breaker is not closed, from a remote gateway",
      command:
        "GBT_GATEWAY_ADMIN_TOKEN=… <%= config.bin %> <%= command.id %> --url https://gw.example --json | jq '.[] | select(.breaker != \"closed\")'",
    },
  ];
  static override flags = {
    url: Flags.string({ description: "Gateway base URL.", default: "http://127.0.0.1:8080" }),
    ...gatewayPathFlags,
  };

  async run(): Promise<GatewayNode[]> {
    const { flags } = await this.parse(GatewayNodes);
    const nodes = await adminGatewayClient(flags.url, await gatewayAdminToken(flags)).listNodes();
    const rate = (v: number | null) => (v === null ? "—" : v.toFixed(1));
    this.out(
      nodes.length === 0
        ? "No node has registered. Nodes join with `gbt serve --gateway URL`."
        : renderTable(
            [
              "NODE",
              "URL",
              "MODELS",
              "STATUS",
              "BREAKER",
              "LOAD",
              "RAMP",
              "HEALTH",
              "TOK/S (bench/seen)",
              "BACKEND / GPU",
              "TIER",
              "REP",
              "ELIGIBLE",
            ],
            nodes.map((n) => [
              `${n.id.slice(0, 10)}…`,
              n.url,
              n.models.join(","),
              n.status,
              n.cooldownUntil !== null ? `${n.breaker} (cooling down)` : n.breaker,
              `${n.inFlight}/${Math.max(1, Math.ceil(n.declaredCapacity * n.rampFactor - 1e-9))}`,
              `${Math.round(n.rampFactor * 100)}%`,
              n.healthScore.toFixed(2),
              `${rate(n.tokPerSec.benchmark)}/${rate(n.tokPerSec.observed)}${n.belowFloor ? " (below floor)" : ""}`,
              backendCell(n),
              `${n.tier}${n.evidence.length > 0 ? ` (${n.evidence.length} evidence)` : ""}`,
              n.reputation === null ? "—" : n.reputation.toFixed(2),
              n.eligible ? "yes" : "no",
            ]),
          ),
    );
    return nodes;
  }
}

/** The node's backend and, from its signed benchmark, its GPU and offload: "embedded, cuda NVIDIA H200 139.8 GiB, 33/33 layers". */
function backendCell(n: GatewayNode): string {
  const kind = n.backend?.kind ?? "—";
  const gpu = n.gpu;
  if (gpu === null || gpu === undefined) return kind;
  if (gpu.backend === "cpu") return `${kind}, cpu`;
  const vram = gpu.vramTotalMB !== null ? ` ${(gpu.vramTotalMB / 1024).toFixed(1)} GiB` : "";
  const layers =
    gpu.gpuLayers !== null && gpu.totalLayers !== null ? `, ${gpu.gpuLayers}/${gpu.totalLayers} layers` : "";
  return `${kind}, ${gpu.backend} ${gpu.devices.join("+") || "gpu"}${vram}${layers}`;
}
