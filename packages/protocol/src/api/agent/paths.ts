/**
 * Every HTTP path of the agent API, served by a node (loopback, or to its gateway's link token):
 * signed jobs in, their outcomes and the allowlist out. The agent's routes are declared with the
 * patterns and clients build their URLs with the functions, so the two cannot drift. Path
 * parameters are URL-encoded here; callers pass them raw.
 */

/** Largest signed job body the agent accepts (413 beyond): parameters are small by design. */
export const MAX_JOB_BODY_BYTES = 64 * 1024;

/** Longest job id a status path carries. */
export const MAX_JOB_ID_LENGTH = 200;

export const agentPaths = {
  /** `POST`: a signed Job; answers its outcome (see `agentOutcomeStatus` for the status). */
  jobs: "/agent/jobs",
  /** `GET`: the outcome of a job this node accepted; 404 when it never did. */
  job: (jobId: string) => `/agent/jobs/${encodeURIComponent(jobId)}`,
  /** The route pattern of `job` (Hono syntax). */
  jobPattern: "/agent/jobs/:id",
  /** `GET`: the job types this agent accepts, with its node and chain. */
  allowlist: "/agent/allowlist",
  /** Every agent route lies under this prefix. */
  prefix: "/agent",
} as const;
