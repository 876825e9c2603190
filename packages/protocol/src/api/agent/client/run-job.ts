/**
 * Submits a signed Job and follows it to a final state: the agent answers a submission when the
 * job is done, but a duplicate delivery of a job still running answers `running`, and then this
 * polls `GET /agent/jobs/:id` until the job ends; the final outcome's JobResult is checked
 * against the job sent, as `submitJob` checks it.
 */

import { GbtError } from "../../../errors.js";
import type { SignedObject } from "../../../signed-object.js";
import { FINAL_JOB_STATES, type JobOutcome } from "../job-outcome.js";
import { checkJobOutcome, sentEnvelope } from "../job-result.js";
import type { AgentTransport } from "./agent-client.js";
import { getJobStatus } from "./get-job-status.js";
import { submitJob } from "./submit-job.js";

export interface RunJobParameters {
  job: SignedObject<"Job">;
  signal?: AbortSignal | undefined;
  /** Sees each intermediate (running) outcome. */
  onProgress?: (outcome: JobOutcome) => void;
}

export type RunJobReturnType = JobOutcome;

/** Submits `job` and polls until it reaches a final state. */
export async function runJob(
  client: AgentTransport,
  { job, signal, onProgress }: RunJobParameters,
): Promise<RunJobReturnType> {
  let outcome = await submitJob(client, { job, signal });
  while (!FINAL_JOB_STATES.has(outcome.state)) {
    onProgress?.(outcome);
    await sleep(client.pollIntervalMs, signal);
    outcome = await getJobStatus(client, { jobId: job.message.jobId, signal });
    // A polled outcome must answer the job sent, as the submitted one did.
    if (FINAL_JOB_STATES.has(outcome.state)) return checkJobOutcome(outcome, sentEnvelope(job));
  }
  return outcome;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new GbtError("INTERRUPTED", "Cancelled."));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new GbtError("INTERRUPTED", "Cancelled."));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
