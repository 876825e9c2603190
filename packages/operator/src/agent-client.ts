/**
 * The Operator's only line to the node: the agent's HTTP API. It reads the allowlist the agent
 * publishes (`GET /agent/allowlist`), posts signed jobs (`POST /agent/jobs`) and follows them to a
 * final state (`GET /agent/jobs/:id`). Every answer is parsed with zod before anything reads it.
 */
import { GbtError, type SignedObject } from "@gbt/protocol";
import { z } from "zod";

/** The allowlist as the agent publishes it. */
export const publishedAllowlistSchema = z.object({
  version: z.number().int().min(0),
  /** The node behind the agent and its chain (agents of older versions do not say). */
  node: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/)
    .optional(),
  chainId: z.number().int().positive().optional(),
  types: z
    .array(
      z.object({
        type: z.string().min(1).max(64),
        risk: z.enum(["read", "change"]),
        description: z.string().max(500),
        paramsSchema: z.record(z.string(), z.unknown()),
      }),
    )
    .max(100),
});
export type PublishedAllowlist = z.infer<typeof publishedAllowlistSchema>;

/** What the agent answers about a job (its AgentOutcome). */
export const jobOutcomeSchema = z.object({
  jobId: z.string().max(200).optional(),
  state: z.string().min(1).max(32),
  code: z.string().max(64).optional(),
  message: z.string().max(4000).optional(),
  states: z.array(z.string().max(32)).max(20).optional(),
  output: z.unknown().optional(),
  result: z.unknown().optional(),
});
export type JobOutcome = z.infer<typeof jobOutcomeSchema>;

/** States after which a job never changes again. */
export const FINAL_JOB_STATES: ReadonlySet<string> = new Set([
  "succeeded",
  "failed",
  "rolled_back",
  "rejected",
]);

export interface AgentClient {
  /** Base URL of the node (e.g. http://127.0.0.1:8787). */
  readonly nodeUrl: string;
  allowlist(signal?: AbortSignal): Promise<PublishedAllowlist>;
  submit(job: SignedObject<"Job">, signal?: AbortSignal): Promise<JobOutcome>;
  status(jobId: string, signal?: AbortSignal): Promise<JobOutcome>;
  /** Submits and polls until the job reaches a final state; `onProgress` sees each intermediate outcome. */
  run(
    job: SignedObject<"Job">,
    options?: { signal?: AbortSignal; onProgress?: (outcome: JobOutcome) => void },
  ): Promise<JobOutcome>;
}

export interface AgentClientOptions {
  nodeUrl: string;
  fetch?: typeof fetch;
  /** Between polls of a running job (default 250 ms). */
  pollIntervalMs?: number;
  /** Per request (default 30 s). */
  requestTimeoutMs?: number;
  /** For POST /agent/jobs, which answers when the job is done (default 15 min: a serve benchmark takes minutes). */
  submitTimeoutMs?: number;
}

/** A client of one node's agent over HTTP. */
export function createAgentClient(options: AgentClientOptions): AgentClient {
  const fetchFn = options.fetch ?? fetch;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const submitTimeoutMs = options.submitTimeoutMs ?? 15 * 60_000;
  const nodeUrl = options.nodeUrl;

  function endpoint(path: string): string {
    try {
      return new URL(path, nodeUrl).toString();
    } catch {
      throw new GbtError("USAGE", `--node-url ${nodeUrl} is not a URL.`, {
        hint: "Give the node's base URL, e.g. http://127.0.0.1:8787.",
      });
    }
  }

  async function request(
    path: string,
    init: RequestInit,
    signal?: AbortSignal,
    timeoutMs = requestTimeoutMs,
  ): Promise<Response> {
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      return await fetchFn(endpoint(path), {
        ...init,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (cause) {
      if (cause instanceof GbtError) throw cause;
      if (signal?.aborted) throw new GbtError("INTERRUPTED", "Cancelled.", { cause });
      throw new GbtError("NODE_UNREACHABLE", `Cannot reach the node's agent at ${nodeUrl}.`, {
        hint: "Start the node with `gbt serve`, or point --node-url at it (the agent answers on loopback).",
        cause,
      });
    }
  }

  async function readJson(response: Response, what: string): Promise<unknown> {
    const text = await response.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new GbtError(
        "INVALID_OBJECT",
        `The node at ${nodeUrl} answered ${what} with non-JSON (HTTP ${response.status}).`,
        {
          details: { status: response.status, body: text.slice(0, 300) },
          hint: "Check that --node-url points at a gbt node.",
        },
      );
    }
  }

  async function outcomeOf(response: Response): Promise<JobOutcome> {
    const json = await readJson(response, "a job");
    const parsed = jobOutcomeSchema.safeParse(json);
    if (parsed.success) return parsed.data;
    if (response.status === 404) {
      throw new GbtError("NOT_FOUND", `The node at ${nodeUrl} serves no job endpoint (HTTP 404).`, {
        hint: "The agent answers only on a loopback listener; run the Operator on the node itself.",
      });
    }
    throw new GbtError(
      "INVALID_OBJECT",
      `The node at ${nodeUrl} answered HTTP ${response.status} without a job outcome.`,
      {
        details: { status: response.status },
        hint: "Check that --node-url points at a gbt node.",
      },
    );
  }

  const client: AgentClient = {
    nodeUrl,
    async allowlist(signal) {
      const response = await request("/agent/allowlist", { method: "GET" }, signal);
      if (response.status === 404) {
        throw new GbtError("NOT_FOUND", `The node at ${nodeUrl} publishes no agent allowlist (HTTP 404).`, {
          hint: "Use a node that runs the agent (`gbt serve`), reached on loopback.",
        });
      }
      const parsed = publishedAllowlistSchema.safeParse(await readJson(response, "GET /agent/allowlist"));
      if (!parsed.success) {
        throw new GbtError("INVALID_OBJECT", `The node at ${nodeUrl} published a malformed allowlist.`, {
          details: { issue: parsed.error.issues[0]?.message },
          hint: "Upgrade the node and the Operator to the same gbt version.",
        });
      }
      return parsed.data;
    },
    async submit(job, signal) {
      const response = await request(
        "/agent/jobs",
        { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(job) },
        signal,
        submitTimeoutMs,
      );
      return outcomeOf(response);
    },
    async status(jobId, signal) {
      const response = await request(`/agent/jobs/${encodeURIComponent(jobId)}`, { method: "GET" }, signal);
      if (response.status === 404) {
        throw new GbtError("NOT_FOUND", `The node at ${nodeUrl} has no job ${jobId}.`, {
          details: { jobId },
        });
      }
      return outcomeOf(response);
    },
    async run(job, runOptions = {}) {
      let outcome = await client.submit(job, runOptions.signal);
      while (!FINAL_JOB_STATES.has(outcome.state)) {
        runOptions.onProgress?.(outcome);
        await sleep(pollIntervalMs, runOptions.signal);
        outcome = await client.status(job.message.jobId, runOptions.signal);
      }
      return outcome;
    },
  };
  return client;
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
