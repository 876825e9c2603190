import type { EvidenceRecord } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { renderTable } from "../../../format.js";
import { adminGatewayClient, gatewayAdminToken, gatewayPathFlags } from "../../../gateway-paths.js";
import { GbtCommand } from "../../../gbt-command.js";

export default class GatewayEvidenceList extends GbtCommand {
  static override summary =
    "List the gateway's evidence records: fraud (with slashing proposals) and soft quality failures.";
  static override description =
    "Reads GET /v1/gateway/evidence with the admin token (GBT_GATEWAY_ADMIN_TOKEN, else <data dir>/admin-token). Fraud evidence (signature mismatch, model digest mismatch, receipt for work not delivered, spoofed benchmark) carries a slashing proposal for governance with the evidence hash that would go on chain; quality evidence only lowers reputation.";
  static override examples = [
    { description: "Every record, newest first", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "One node's fraud records, for scripts",
      command:
        "<%= config.bin %> <%= command.id %> --node 0xabc… --json | jq '.[] | select(.severity == \"fraud\")'",
    },
  ];
  static override flags = {
    url: Flags.string({ description: "Gateway base URL.", default: "http://127.0.0.1:8080" }),
    node: Flags.string({ description: "Only this node's records (its address)." }),
    limit: Flags.integer({
      description: "At most this many records (1–500).",
      min: 1,
      max: 500,
      default: 100,
    }),
    ...gatewayPathFlags,
  };

  async run(): Promise<EvidenceRecord[]> {
    const { flags } = await this.parse(GatewayEvidenceList);
    const records = await adminGatewayClient(flags.url, await gatewayAdminToken(flags)).listEvidence({
      ...(flags.node ? { node: flags.node } : {}),
      limit: flags.limit,
    });
    this.out(
      records.length === 0
        ? "No evidence recorded."
        : renderTable(
            ["ID", "WHEN", "NODE", "KIND", "SEVERITY", "SLASHING", "SUMMARY"],
            records.map((r) => [
              r.id,
              new Date(r.at).toISOString(),
              `${r.node.slice(0, 10)}…`,
              r.kind,
              r.severity,
              r.slashingProposal?.status ?? "—",
              r.summary.length > 80 ? `${r.summary.slice(0, 79)}…` : r.summary,
            ]),
          ),
    );
    return records;
  }
}
