/**
 * `POST /agent/jobs` (or the gateway's relay of it): sends a signed Job and resolves with its
 * outcome whatever the job's fate: a rejected or failed job is an outcome, not an error. The
 * outcome's JobResult must answer the exact envelope sent (a success must carry one): an answer
 * to another copy of the job, or a success nobody signed, is an error.
 */
import { gatewayPaths } from "../../gateway/paths.js";
import type { JobOutcome } from "../job-outcome.js";
import { checkJobOutcome, sentEnvelope } from "../job-result.js";
import { agentPaths } from "../paths.js";
import type { AgentTransport, JobBody } from "./agent-client.js";
import { outcomeOf } from "./agent-request.js";

export interface SubmitJobParameters {
  /** The signed Job: its exact JSON text (as `gbt job create` wrote it), or the object. */
  job: JobBody;
  signal?: AbortSignal | undefined;
}

export type SubmitJobReturnType = JobOutcome;

/** Submits a signed Job to the agent; waits for its final outcome (up to the submit timeout). */
export async function submitJob(
  client: AgentTransport,
  { job, signal }: SubmitJobParameters,
): Promise<SubmitJobReturnType> {
  const body = typeof job === "string" ? job : JSON.stringify(job);
  const response = await client.request({
    method: "POST",
    path: client.relay ? gatewayPaths.nodeJobs(client.relay.node) : agentPaths.jobs,
    body,
    signal,
    timeoutMs: client.submitTimeoutMs,
  });
  return checkJobOutcome(await outcomeOf(client, response), sentEnvelope(body));
}
