import { benchmarkHistory, resolvePaths, type SignedBenchmarkRecord } from "@gbt/node";
import { Flags } from "@oclif/core";
import { GbtCommand } from "../../../gbt-command.js";
import { renderHistory } from "../../../render-benchmark.js";

export default class NodeBenchmarkHistory extends GbtCommand {
  static override summary = "List this node's stored benchmark records, newest first.";

  static override description =
    "Reads the signed records that `gbt node benchmark` stored in node.db. With --json, prints them as one JSON array of signed BenchmarkRecords (each verifiable with @gbt/protocol).";

  static override examples = [
    { description: "The last records", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Decode rate of the latest micro record",
      command:
        "<%= config.bin %> <%= command.id %> --mode micro --limit 1 --json | jq '.[0].payload.verdicts.decodeTokPerSec'",
    },
  ];

  static override flags = {
    limit: Flags.integer({ description: "At most this many records.", min: 1, default: 20 }),
    mode: Flags.string({ description: "Only records of this mode.", options: ["micro", "serve"] }),
  };

  async run(): Promise<SignedBenchmarkRecord[]> {
    const { flags } = await this.parse(NodeBenchmarkHistory);
    const records = await benchmarkHistory({
      paths: resolvePaths(),
      limit: flags.limit,
      ...(flags.mode ? { mode: flags.mode as "micro" | "serve" } : {}),
    });
    this.out(renderHistory(records));
    return records;
  }
}
