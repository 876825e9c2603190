import {
  ALLOWLIST_VERSION,
  type AllowlistDescription,
  createJobTypeRegistry,
  describeAllowlist,
} from "@gbt/protocol";
import { renderTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";
import { summarizeParams } from "../../job-params.js";

export type AllowlistResult = AllowlistDescription;

export default class AgentAllowlist extends GbtCommand {
  static override summary = "List the job types a node accepts, with their parameters.";

  static override description =
    `A node runs only the job types of its allowlist (version ${ALLOWLIST_VERSION}), each with a strict parameter schema. "read" types never change the node; "change" types do and are rolled back when they fail.

The table shows each type's parameters by name (\`?\` marks an optional one); --json gives the full JSON Schema (draft 2020-12) of each type's parameters, for tools that build jobs (see \`gbt job create\`).`;

  static override examples = [
    { description: "The job types", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "The parameter schema of one type",
      command:
        "<%= config.bin %> <%= command.id %> --json | jq '.types[] | select(.type == \"model.pull\") | .paramsSchema'",
    },
  ];

  async run(): Promise<AllowlistResult> {
    await this.parse(AgentAllowlist);
    const described = describeAllowlist(createJobTypeRegistry());
    const types = described.types;
    this.out(
      renderTable(
        ["TYPE", "RISK", "PARAMS", "DESCRIPTION"],
        types.map((t) => [t.type, t.risk, summarizeParams(t.paramsSchema), t.description]),
      ),
    );
    this.out(`(allowlist version ${described.version})`);
    return described;
  }
}
