import { type JobOutcome, jobOutcomeError } from "@gbt/protocol";
import { Args } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { gatewayRelayFlag, nodeUrlFlag, readJobInput, submitJob } from "../../job-client.js";

export default class JobSubmit extends GbtCommand {
  static override summary = "Send a signed job to a node and print its outcome.";

  static override description =
    `Reads a signed Job (as printed by \`gbt job create\`) from a file, or from stdin with -, and POSTs it to the node's agent at --node-url/agent/jobs. The node verifies the owner's signature, audience, chain, freshness and replay, runs the allowlisted job, logs it to its audit log and answers with the outcome and a JobResult signed by the node key; the JobResult must answer the exact job sent (its envelopeHash), or the command fails. A job whose signature does not prove an owner is refused unsigned and unaudited; through --gateway, only jobs of the owners the node published are relayed (403 owner_not_allowed otherwise), at most relay.jobsPerMinute per node (429 rate_limited).

The outcome is printed on stdout as JSON (with or without --json). The exit code is 0 when the job succeeded, else the class of its error code: 4 for a signature, signer, audience or freshness rejection (e.g. UNKNOWN_SIGNER, EXPIRED), 6 for invalid parameters or a failed preflight, 5 when the node cannot be reached. Submitting the same job again answers with the stored outcome without running it twice.`;

  static override examples = [
    {
      description: "Create and submit in one pipe",
      command:
        "<%= config.bin %> job create status.read --key-file ./owner.key | <%= config.bin %> <%= command.id %> -",
    },
    {
      description: "Through the gateway, to a managed node out of reach",
      command: "<%= config.bin %> <%= command.id %> ./restart.json --gateway https://gateway.example",
    },
    {
      description: "Submit a saved job to another local port",
      command: "<%= config.bin %> <%= command.id %> ./drain.json --node-url http://127.0.0.1:9000",
    },
  ];

  static override args = {
    file: Args.string({ description: "The signed Job JSON file, or - for stdin.", required: true }),
  };

  static override flags = { "node-url": nodeUrlFlag, gateway: gatewayRelayFlag };

  async run(): Promise<JobOutcome> {
    const { args, flags } = await this.parse(JobSubmit);
    const body = await readJobInput(args.file);
    const outcome = await submitJob({
      nodeUrl: flags["node-url"],
      body,
      ...(flags.gateway !== undefined ? { gatewayUrl: flags.gateway } : {}),
    });
    this.out(JSON.stringify(outcome, null, 2));
    if (outcome.state !== "succeeded") {
      const error = jobOutcomeError(outcome);
      this.note(`Error: ${error.message}`);
      process.exitCode = error.exitCode;
    }
    return outcome;
  }
}
