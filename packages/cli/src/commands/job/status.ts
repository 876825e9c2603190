import type { JobOutcome } from "@gbt/protocol";
import { Args, Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { gatewayRelayFlag, jobStatus, nodeUrlFlag } from "../../job-client.js";

export default class JobStatus extends GbtCommand {
  static override summary = "Show what a node did with a job.";

  static override description =
    "Asks the node's agent (GET --node-url/agent/jobs/ID) for a job's outcome: running with the states passed so far and its progress (a pull's bytes), or its final state with the signed JobResult, as stored by the node. A job the node never accepted fails with NOT_FOUND (exit 8). The outcome is printed on stdout as JSON.";

  static override examples = [
    {
      description: "The outcome of a job this node ran",
      command: "<%= config.bin %> <%= command.id %> 3f0c6a8e-2b1d-4c5e-9f7a-1b2c3d4e5f60",
    },
    {
      description: "Its final state only",
      command: "<%= config.bin %> <%= command.id %> $JOB_ID --json | jq -r .state",
    },
  ];

  static override args = {
    id: Args.string({ description: "The job id (the Job's message.jobId).", required: true }),
  };

  static override flags = {
    "node-url": nodeUrlFlag,
    gateway: gatewayRelayFlag,
    node: Flags.string({
      helpValue: "ADDRESS",
      description: "The node's address, with --gateway.",
      dependsOn: ["gateway"],
    }),
  };

  async run(): Promise<JobOutcome> {
    const { args, flags } = await this.parse(JobStatus);
    const outcome = await jobStatus({
      nodeUrl: flags["node-url"],
      jobId: args.id,
      ...(flags.gateway !== undefined ? { gatewayUrl: flags.gateway } : {}),
      ...(flags.node !== undefined ? { node: flags.node } : {}),
    });
    this.out(JSON.stringify(outcome, null, 2));
    return outcome;
  }
}
