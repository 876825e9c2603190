import type { EvidenceRecord } from "@gbt/protocol";
import { Args, Flags } from "@oclif/core";
import { adminGatewayClient, gatewayAdminToken, gatewayPathFlags } from "../../../gateway-paths.js";
import { GbtCommand } from "../../../gbt-command.js";

export default class GatewayEvidenceShow extends GbtCommand {
  static override summary =
    "Show one evidence record: what was observed, its hash, and its slashing proposal.";
  static override description =
    "Reads GET /v1/gateway/evidence/:id with the admin token. The hash is keccak256 of the record's canonical JSON: the evidence hash a governance slashing proposal names on chain.";
  static override examples = [
    { description: "One record", command: "<%= config.bin %> <%= command.id %> ev_0123456789abcdef" },
    {
      description: "The hash to put in a slashing proposal",
      command: "<%= config.bin %> <%= command.id %> ev_0123456789abcdef --json | jq -r .hash",
    },
  ];
  static override args = {
    id: Args.string({ description: "Evidence id (ev_…, from `gbt gateway evidence list`).", required: true }),
  };
  static override flags = {
    url: Flags.string({ description: "Gateway base URL.", default: "http://127.0.0.1:8080" }),
    ...gatewayPathFlags,
  };

  async run(): Promise<EvidenceRecord> {
    const { args, flags } = await this.parse(GatewayEvidenceShow);
    const record = await adminGatewayClient(flags.url, await gatewayAdminToken(flags)).getEvidence(args.id);
    const proposal = record.slashingProposal;
    this.out(
      [
        `Evidence   ${record.id}`,
        `Hash       ${record.hash}`,
        `When       ${new Date(record.at).toISOString()}`,
        `Node       ${record.node}`,
        `Kind       ${record.kind} (${record.severity})`,
        `Summary    ${record.summary}`,
        `Slashing   ${proposal ? `proposal #${proposal.id}, ${proposal.status} (for governance; evidence hash above)` : "none (soft failure: reputation only)"}`,
        "Details",
        ...JSON.stringify(record.details, null, 2)
          .split("\n")
          .map((line) => `  ${line}`),
      ].join("\n"),
    );
    return record;
  }
}
