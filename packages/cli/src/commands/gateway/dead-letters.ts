import { type DeadLetter, listDeadLetters, requeueDeadLetters, withGatewayDatabase } from "@gbt/gateway";
import { Args, Flags } from "@oclif/core";
import { renderTable } from "../../format.js";
import { gatewayPathFlags, gatewayPaths } from "../../gateway-paths.js";
import { GbtCommand } from "../../gbt-command.js";

export default class GatewayDeadLetters extends GbtCommand {
  static override summary =
    "List the settlements the gateway gave up on, with their errors; --retry re-queues them.";
  static override description =
    "Every served request is journalled in <data dir>/settlement-journal/ until its ledger transaction is durable. A write that keeps failing (5 attempts over about 3 s) or can never succeed (an unknown account) moves to the dead letters in gateway.db, with its last error; nothing is billed for it until it is re-queued. --retry marks the dead letters (all, or the request ids given) for the gateway to settle when it next starts, once: a request already in the ledger is dropped then, never billed twice. Reads the data dir directly, so it works while the gateway is stopped.";
  static override examples = [
    { description: "What was given up on, as a table", command: "<%= config.bin %> <%= command.id %>" },
    { description: "As JSON, for scripts", command: "<%= config.bin %> <%= command.id %> --json" },
    {
      description: "Re-queue one after fixing its cause, then restart the gateway",
      command: "<%= config.bin %> <%= command.id %> --retry 01J…",
    },
  ];
  static override strict = false;
  static override args = {
    requestIds: Args.string({ description: "With --retry: only these request ids (default: all)." }),
  };
  static override flags = {
    retry: Flags.boolean({
      description: "Mark the dead letters (all, or the ids given) to be settled at the gateway's next start.",
      default: false,
    }),
    ...gatewayPathFlags,
  };

  async run(): Promise<{ deadLetters: DeadLetter[]; requeued: string[] }> {
    const { flags, argv } = await this.parse(GatewayDeadLetters);
    const ids = (argv as string[]).length > 0 ? (argv as string[]) : undefined;
    const result = withGatewayDatabase(gatewayPaths(flags).dataDir, (db) => {
      const requeued = flags.retry ? requeueDeadLetters(db, ids) : [];
      return { deadLetters: listDeadLetters(db), requeued };
    });
    if (flags.retry) {
      this.note(
        result.requeued.length === 0
          ? "Nothing to re-queue."
          : `Re-queued ${result.requeued.length}; the gateway settles them when it next starts.`,
      );
    }
    this.out(
      result.deadLetters.length === 0
        ? "No dead letters: every served request was settled or is waiting to be."
        : renderTable(
            ["REQUEST", "ACCOUNT", "NODE", "MODEL", "SERVED", "ATTEMPTS", "ERROR", "RE-QUEUED"],
            result.deadLetters.map((d) => [
              d.requestId,
              d.accountId,
              d.node === "?" ? "?" : `${d.node.slice(0, 10)}…`,
              d.model,
              d.servedAt,
              String(d.attempts),
              d.error.code === null ? d.error.message : `${d.error.code}: ${d.error.message}`,
              d.requeuedAt ?? "no",
            ]),
          ),
    );
    return result;
  }
}
