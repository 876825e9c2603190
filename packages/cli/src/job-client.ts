/**
 * The job commands' side of the agent API: reading a signed Job from a file or stdin, the
 * `--node-url` and `--gateway` flags, and the two calls the commands make with @gbt/protocol's
 * agent client, to the node's agent directly or relayed by the node's gateway
 * (`/v1/nodes/:address/jobs`) for a managed node out of reach.
 */
import { readFile } from "node:fs/promises";
import { type AgentClient, createAgentClient, GbtError, type JobOutcome } from "@gbt/protocol";
import { Flags } from "@oclif/core";

export const DEFAULT_NODE_URL = "http://127.0.0.1:8787";

interface JobTarget {
  nodeUrl: string;
  /** Relay through this gateway instead of calling the node. */
  gatewayUrl?: string;
}

/** The agent client of a target: the node's agent, or the gateway's relay for `node`. */
function agentClient(target: JobTarget, node: string | undefined, fetchFn: typeof fetch): AgentClient {
  if (target.gatewayUrl === undefined) return createAgentClient({ url: target.nodeUrl, fetch: fetchFn });
  if (node === undefined || !/^0x[0-9a-fA-F]{40}$/.test(node)) {
    throw new GbtError("USAGE", "Relaying through a gateway needs the node's address.", {
      hint: "Give --node 0x… (gbt job status), or a Job whose message.node is the node's address.",
    });
  }
  return createAgentClient({ url: target.gatewayUrl, relay: { node }, fetch: fetchFn });
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

/** POSTs a signed Job (its JSON text, sent byte for byte); resolves with its outcome whatever the job's fate. */
export function submitJob(
  options: JobTarget & { body: string },
  fetchFn: typeof fetch = fetch,
): Promise<JobOutcome> {
  const node = options.gatewayUrl === undefined ? undefined : jobNode(options.body);
  return agentClient(options, node, fetchFn).submitJob({ job: options.body });
}

/** The node's outcome of a job; NOT_FOUND when the node never accepted it. */
export function jobStatus(
  options: JobTarget & { jobId: string; node?: string },
  fetchFn: typeof fetch = fetch,
): Promise<JobOutcome> {
  return agentClient(options, options.node, fetchFn).getJobStatus({ jobId: options.jobId });
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
