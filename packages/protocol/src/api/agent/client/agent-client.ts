/**
 * The typed client of the agent API: one node's agent, reached directly (`/agent/*`) or through
 * the gateway's relay for a managed node out of reach (`/v1/nodes/:node/jobs`, the node verifies
 * the job exactly as if sent directly). The client holds the base URL, fetch and timeouts; each
 * action lives in its own file and takes the client first, and the client carries them bound.
 */
import type { SignedObject } from "../../../signed-object.js";
import type { PublishedAllowlist } from "../allowlist.js";
import type { JobOutcome } from "../job-outcome.js";
import { type AgentRequest, agentRequest } from "./agent-request.js";
import { type GetAllowlistParameters, getAllowlist } from "./get-allowlist.js";
import { type GetJobStatusParameters, getJobStatus } from "./get-job-status.js";
import { type RunJobParameters, runJob } from "./run-job.js";
import { type SubmitJobParameters, submitJob } from "./submit-job.js";

export interface AgentClientOptions {
  /** Base URL of the node (e.g. http://127.0.0.1:8787), or of the gateway with `relay`. */
  url: string;
  /** Carry the job routes through this gateway's relay to `relay.node` (the Job names that node). */
  relay?: { node: string };
  fetch?: typeof fetch;
  /** Per request (default 30 s). */
  requestTimeoutMs?: number;
  /** For POST /agent/jobs, which answers when the job is done (default 15 min: a serve benchmark takes minutes). */
  submitTimeoutMs?: number;
  /** Between polls of a running job in `runJob` (default 250 ms). */
  pollIntervalMs?: number;
}

/** What every action is given: where the agent is and how to reach it. */
export interface AgentTransport {
  readonly url: string;
  readonly relay: { node: string } | undefined;
  readonly pollIntervalMs: number;
  readonly submitTimeoutMs: number;
  /** One HTTP request to `request.path` under `url`; transport failures become GbtErrors. */
  request(request: AgentRequest): Promise<Response>;
}

export interface AgentClient extends AgentTransport {
  /** POSTs a signed Job; resolves with its outcome whatever the job's fate. */
  submitJob(parameters: SubmitJobParameters): Promise<JobOutcome>;
  /** The outcome of a job; NOT_FOUND when the node never accepted it. */
  getJobStatus(parameters: GetJobStatusParameters): Promise<JobOutcome>;
  /** The job types the agent accepts, with its node and chain. */
  getAllowlist(parameters?: GetAllowlistParameters): Promise<PublishedAllowlist>;
  /** Submits and polls until the job reaches a final state. */
  runJob(parameters: RunJobParameters): Promise<JobOutcome>;
}

/** A client of one node's agent over HTTP. */
export function createAgentClient(options: AgentClientOptions): AgentClient {
  const fetchFn = options.fetch ?? fetch;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const transport: AgentTransport = {
    url: options.url,
    relay: options.relay,
    pollIntervalMs: options.pollIntervalMs ?? 250,
    submitTimeoutMs: options.submitTimeoutMs ?? 15 * 60_000,
    request: (request) => agentRequest(transport, fetchFn, { timeoutMs: requestTimeoutMs, ...request }),
  };
  return {
    ...transport,
    submitJob: (parameters) => submitJob(transport, parameters),
    getJobStatus: (parameters) => getJobStatus(transport, parameters),
    getAllowlist: (parameters = {}) => getAllowlist(transport, parameters),
    runJob: (parameters) => runJob(transport, parameters),
  };
}

/** The signed Job as the wire carries it: the exact JSON text, or an object serialised once. */
export type JobBody = SignedObject<"Job"> | string;
