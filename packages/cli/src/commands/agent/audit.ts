import { type ReadAuditLogResult, readAuditLog } from "@gbt/agent";
import { Flags } from "@oclif/core";
import { renderTable } from "../../format.js";
import { GbtCommand } from "../../gbt-command.js";

/** `0x1234…abcd`: enough of an address to tell issuers apart in a table. */
function shortAddress(value: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(value) ? `${value.slice(0, 6)}…${value.slice(-4)}` : value;
}

export default class AgentAudit extends GbtCommand {
  static override summary = "Print the agent's audit log and verify its hash chain.";

  static override description =
    `Every job the agent received ends as one entry of an append-only SQLite table (<dataDir>/agent/audit.db): succeeded, failed, rolled_back, or rejected with its error code. Each entry carries the keccak256 of its fields and of the entry before it, so editing, inserting or deleting a row breaks the chain.

--verify recomputes every hash and fails with AUDIT_TAMPERED (exit 4) naming the first entry that no longer matches: "hash mismatch" (the row was edited), "broken link" (a row before it was rewritten with a recomputed hash) or "gap in sequence" (a row was deleted). A log that does not exist yet is empty and valid; reading never creates it.

The table shows the newest --limit entries; --json prints them with their details, results and hashes.`;

  static override examples = [
    { description: "The newest entries", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Verify the whole chain (exit 4 when tampered)",
      command: "<%= config.bin %> <%= command.id %> --verify",
    },
    {
      description: "Rejected jobs, for scripts",
      command:
        "<%= config.bin %> <%= command.id %> --json --limit 500 | jq '.entries[] | select(.state == \"rejected\")'",
    },
    {
      description: "Verify a copy of another node's log",
      command: "<%= config.bin %> <%= command.id %> --verify --file ./audit.db",
    },
  ];

  static override flags = {
    verify: Flags.boolean({ description: "Verify the whole hash chain; exit 4 at the first altered entry." }),
    limit: Flags.integer({
      description: "Show at most this many of the newest entries.",
      min: 1,
      default: 50,
    }),
    file: Flags.string({
      helpValue: "PATH",
      description: "Audit log file (default <dataDir>/agent/audit.db).",
    }),
  };

  async run(): Promise<ReadAuditLogResult> {
    const { flags } = await this.parse(AgentAudit);
    const result = readAuditLog({ file: flags.file, limit: flags.limit, verify: flags.verify });
    if (result.entries.length === 0) {
      this.out(`No audit entries in ${result.file}.`);
    } else {
      this.out(
        renderTable(
          ["SEQ", "TIME", "JOB", "TYPE", "ISSUER", "STATE", "CODE"],
          result.entries.map((e) => [
            String(e.seq),
            new Date(e.at).toISOString(),
            e.jobId,
            e.type,
            shortAddress(e.issuer),
            e.state,
            e.code ?? "",
          ]),
        ),
      );
      if (result.entries.length < result.total) {
        this.out(`(the newest ${result.entries.length} of ${result.total} entries; see --limit)`);
      }
    }
    if (result.verified) this.out(`Chain verified: ${result.verified.entries} entries, no tampering found.`);
    return result;
  }
}
