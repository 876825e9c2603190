/**
 * The client side of a node's job endpoint: sends a signed Job to `POST /agent/jobs` and reads
 * outcomes back from `GET /agent/jobs/:id`, directly or relayed by the node's gateway
 * (`/v1/nodes/:address/jobs`) for a managed node out of reach. The node answers every job with an outcome document;
 * a rejected or failed one becomes the GbtError of its code, so scripts get its exit class.
 */
import { readFile } from "node:fs/promises";
import { type ErrorCode, errorCodes, GbtError } from "@gbt/protocol";
import { Flags } from "@oclif/core";

export const DEFAULT_NODE_URL = "http://127.0.0.1:8787";

/** What a node answers about a job (see @gbt/agent's AgentOutcome). */
export interface JobOutcome {
  jobId?: string;
  state: string;
  code?: string;
  message?: string;
  states?: string[];
  output?: unknown;
  result?: unknown;
}

export interface SubmitJobOptions {
  nodeUrl: string;
  /** The signed Job as JSON text. */
  body: string;
  /** Relay through this gateway instead of calling the node (the Job names the node). */
  gatewayUrl?: string;
}

/** Where a job request goes: the node's agent, or the gateway's relay for `node`. */
function jobTarget(options: { nodeUrl: string; gatewayUrl?: string }, node: string | undefined, suffix = "") {
  if (options.gatewayUrl === undefined) {
    return { base: options.nodeUrl, url: endpoint(options.nodeUrl, `/agent/jobs${suffix}`), label: "node" };
  }
  if (node === undefined || !/^0x[0-9a-fA-F]{40}$/.test(node)) {
    throw new GbtError("USAGE", "Relaying through a gateway needs the node's address.", {
      hint: "Give --node 0x… (gbt job status), or a Job whose message.node is the node's address.",
    });
  }
  return {
    base: options.gatewayUrl,
    url: endpoint(options.gatewayUrl, `/v1/nodes/${node}/jobs${suffix}`),
    label: "gateway",
  };
}

/** The node a signed Job names (message.node), when it names one. */
function jobNode(body: string): string | undefined {
  const node = (JSON.parse(body) as { message?: { node?: unknown } } | null)?.message?.node;
  return typeof node === "string" ? node : undefined;
}

/** Reads a signed Job from a file, or from stdin for `-`; it must at least be JSON. */
export async function readJobInput(
  source: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<string> {
  let text: string;
  try {
    text = source === "-" ? await readAll(stdin) : await readFile(source, "utf8");
  } catch (cause) {
    throw new GbtError(
      "INVALID_INPUT",
      `Cannot read the job file ${source} (${(cause as NodeJS.ErrnoException).code}).`,
      {
        details: { path: source },
        hint: "Give the file `gbt job create` wrote, or - to read the job from stdin.",
        cause,
      },
    );
  }
  try {
    JSON.parse(text);
  } catch {
    throw new GbtError("INVALID_INPUT", `The job in ${source === "-" ? "stdin" : source} is not JSON.`, {
      hint: "Pipe the output of `gbt job create` (it prints the signed Job as JSON).",
    });
  }
  return text;
}

/** POSTs a signed Job to the node; resolves with its outcome whatever the job's fate. */
export async function submitJob(
  options: SubmitJobOptions,
  fetchFn: typeof fetch = fetch,
): Promise<JobOutcome> {
  const target = jobTarget(options, options.gatewayUrl === undefined ? undefined : jobNode(options.body));
  const response = await send(target.base, () =>
    fetchFn(target.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: options.body,
    }),
  );
  return outcomeOf(target.base, response);
}

/** The node's outcome of a job; NOT_FOUND when the node never accepted it. */
export async function jobStatus(
  options: { nodeUrl: string; jobId: string; gatewayUrl?: string; node?: string },
  fetchFn: typeof fetch = fetch,
): Promise<JobOutcome> {
  const target = jobTarget(options, options.node, `/${encodeURIComponent(options.jobId)}`);
  const response = await send(target.base, () => fetchFn(target.url));
  if (response.status === 404 && options.gatewayUrl !== undefined) return outcomeOf(target.base, response);
  if (response.status === 404) {
    throw new GbtError("NOT_FOUND", `The node at ${options.nodeUrl} has no job ${options.jobId}.`, {
      details: { jobId: options.jobId },
      hint: "Check the job id (it is the Job's message.jobId), or the node with --node-url.",
    });
  }
  return outcomeOf(target.base, response);
}

/** The GbtError of an outcome that did not succeed (INTERNAL for a code this CLI does not know). */
export function outcomeError(outcome: JobOutcome): GbtError {
  const code: ErrorCode =
    outcome.code !== undefined && Object.hasOwn(errorCodes, outcome.code)
      ? (outcome.code as ErrorCode)
      : "INTERNAL";
  return new GbtError(
    code,
    `Job ${outcome.jobId ?? "(unnamed)"} ${outcome.state}: ${outcome.message ?? code}`,
    {
      details: { outcome },
    },
  );
}

function endpoint(nodeUrl: string, path: string): string {
  try {
    return new URL(path, nodeUrl).toString();
  } catch {
    throw new GbtError("USAGE", `--node-url ${nodeUrl} is not a URL.`, {
      hint: "Give the node's base URL, e.g. http://127.0.0.1:8787.",
    });
  }
}

async function send(nodeUrl: string, request: () => Promise<Response>): Promise<Response> {
  try {
    return await request();
  } catch (cause) {
    throw new GbtError("NODE_UNREACHABLE", `Cannot reach the node at ${nodeUrl}.`, {
      hint: "Start it with `gbt serve`, or point --node-url at it.",
      cause,
    });
  }
}

async function outcomeOf(nodeUrl: string, response: Response): Promise<JobOutcome> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (isOutcome(json)) return json;
  const relayError = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (relayError && typeof relayError.message === "string")
    throw relayedError(nodeUrl, response.status, relayError);
  if (response.status === 404) {
    throw new GbtError("NOT_FOUND", `The node at ${nodeUrl} serves no job endpoint (HTTP 404).`, {
      hint: "The agent answers only on a loopback listener; submit on the node itself.",
    });
  }
  throw new GbtError(
    "INVALID_OBJECT",
    `The node at ${nodeUrl} answered HTTP ${response.status} without an outcome.`,
    {
      details: { status: response.status, body: text.slice(0, 500) },
      hint: "Check that --node-url points at a gbt node.",
    },
  );
}

/**
 * A gateway's error body (OpenAI style, `code` in snake case) as the GbtError of the same code,
 * so a job refused by the relay exits with the class it would have had at the node.
 */
function relayedError(base: string, status: number, error: { code?: unknown; message?: unknown }): GbtError {
  const raw = typeof error.code === "string" ? error.code.toUpperCase() : "";
  const code: ErrorCode = Object.hasOwn(errorCodes, raw)
    ? (raw as ErrorCode)
    : status === 404
      ? "NOT_FOUND"
      : status >= 500
        ? "NODE_UNREACHABLE"
        : "INVALID_INPUT";
  return new GbtError(code, `${base} refused the job (HTTP ${status}): ${String(error.message)}`, {
    details: { status, code: error.code ?? null },
  });
}

function isOutcome(value: unknown): value is JobOutcome {
  return (
    value !== null && typeof value === "object" && typeof (value as { state?: unknown }).state === "string"
  );
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

/** `--gateway`: relay through the managed node's gateway. */
export const gatewayRelayFlag = Flags.string({
  helpValue: "URL",
  description:
    "Relay through this gateway (POST /v1/nodes/:node/jobs) to a managed node that is out of reach; the node verifies the job exactly as if sent directly.",
});

/** `--node-url`, shared by the job commands. */
export const nodeUrlFlag = Flags.string({
  helpValue: "URL",
  description: "Base URL of the node (its agent answers on loopback only).",
  default: DEFAULT_NODE_URL,
});
