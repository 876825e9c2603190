/**
 * The client side of a node's job endpoint: sends a signed Job to `POST /agent/jobs` and reads
 * outcomes back from `GET /agent/jobs/:id`. The node answers every job with an outcome document;
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
  const url = endpoint(options.nodeUrl, "/agent/jobs");
  const response = await send(options.nodeUrl, () =>
    fetchFn(url, { method: "POST", headers: { "content-type": "application/json" }, body: options.body }),
  );
  return outcomeOf(options.nodeUrl, response);
}

/** The node's outcome of a job; NOT_FOUND when the node never accepted it. */
export async function jobStatus(
  options: { nodeUrl: string; jobId: string },
  fetchFn: typeof fetch = fetch,
): Promise<JobOutcome> {
  const url = endpoint(options.nodeUrl, `/agent/jobs/${encodeURIComponent(options.jobId)}`);
  const response = await send(options.nodeUrl, () => fetchFn(url));
  if (response.status === 404) {
    throw new GbtError("NOT_FOUND", `The node at ${options.nodeUrl} has no job ${options.jobId}.`, {
      details: { jobId: options.jobId },
      hint: "Check the job id (it is the Job's message.jobId), or the node with --node-url.",
    });
  }
  return outcomeOf(options.nodeUrl, response);
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

/** `--node-url`, shared by the job commands. */
export const nodeUrlFlag = Flags.string({
  helpValue: "URL",
  description: "Base URL of the node (its agent answers on loopback only).",
  default: DEFAULT_NODE_URL,
});
