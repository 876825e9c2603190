/** The agent API's typed client: `createAgentClient` and its actions, one per file. */
export {
  type AgentClient,
  type AgentClientOptions,
  type AgentTransport,
  createAgentClient,
  type JobBody,
} from "./agent-client.js";
export type { AgentRequest } from "./agent-request.js";
export { type GetAllowlistParameters, type GetAllowlistReturnType, getAllowlist } from "./get-allowlist.js";
export { type GetJobStatusParameters, type GetJobStatusReturnType, getJobStatus } from "./get-job-status.js";
export { type RunJobParameters, type RunJobReturnType, runJob } from "./run-job.js";
export { type SubmitJobParameters, type SubmitJobReturnType, submitJob } from "./submit-job.js";
