/**
 * `GET /agent/jobs/:id` (or the gateway's relay of it): the outcome of a job, running with the
 * states passed so far or final with its signed JobResult; NOT_FOUND when the node never accepted it.
 */
import { GbtError } from "../../../errors.js";
import { gatewayPaths } from "../../gateway/paths.js";
import type { JobOutcome } from "../job-outcome.js";
import { agentPaths } from "../paths.js";
import type { AgentTransport } from "./agent-client.js";
import { answerer, outcomeOf } from "./agent-request.js";

export interface GetJobStatusParameters {
  /** The job id (the Job's message.jobId). */
  jobId: string;
  signal?: AbortSignal | undefined;
}

export type GetJobStatusReturnType = JobOutcome;

/** Asks the agent what became of a job. */
export async function getJobStatus(
  client: AgentTransport,
  { jobId, signal }: GetJobStatusParameters,
): Promise<GetJobStatusReturnType> {
  const response = await client.request({
    method: "GET",
    path: client.relay ? gatewayPaths.nodeJob(client.relay.node, jobId) : agentPaths.job(jobId),
    signal,
  });
  // Through the relay a 404 may also mean the gateway does not know the node: its body says which.
  if (response.status === 404 && !client.relay) {
    throw new GbtError("NOT_FOUND", `${answerer(client)} has no job ${jobId}.`, {
      details: { jobId },
      hint: "Check the job id (it is the Job's message.jobId), or the node with --node-url.",
    });
  }
  return outcomeOf(client, response);
}
