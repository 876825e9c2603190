/**
 * The agent client's transport and answer readers, shared by its actions: one request with its
 * timeout and the caller's signal, transport failures as GbtErrors (NODE_UNREACHABLE, INTERRUPTED,
 * USAGE for a URL that is not one), and an answer read as a job outcome or as the GbtError the
 * node or the relaying gateway answered with.
 */
import { type ErrorCode, errorCodes, GbtError } from "../../../errors.js";
import { type HttpErrorCode, httpErrorCodes } from "../../../http-errors.js";
import { type JobOutcome, jobOutcomeSchema } from "../job-outcome.js";
import type { AgentTransport } from "./agent-client.js";

export interface AgentRequest {
  method: "GET" | "POST";
  /** Path under the client's base URL. */
  path: string;
  /** A JSON body (sent as is). */
  body?: string;
  signal?: AbortSignal | undefined;
  /** Default: the client's request timeout. */
  timeoutMs?: number;
}

/** Who answers at the client's URL, for messages: the node, or the gateway relaying to it. */
export function answerer(transport: Pick<AgentTransport, "url" | "relay">): string {
  return transport.relay ? `The gateway at ${transport.url}` : `The node at ${transport.url}`;
}

/** Sends one request; resolves with the response whatever its status. */
export async function agentRequest(
  transport: Pick<AgentTransport, "url" | "relay">,
  fetchFn: typeof fetch,
  request: AgentRequest & { timeoutMs: number },
): Promise<Response> {
  const url = endpoint(transport.url, request.path);
  const timeout = AbortSignal.timeout(request.timeoutMs);
  try {
    return await fetchFn(url, {
      method: request.method,
      ...(request.body !== undefined
        ? { headers: { "content-type": "application/json" }, body: request.body }
        : {}),
      signal: request.signal ? AbortSignal.any([request.signal, timeout]) : timeout,
    });
  } catch (cause) {
    if (request.signal?.aborted) throw new GbtError("INTERRUPTED", "Cancelled.", { cause });
    if (transport.relay) {
      throw new GbtError("NODE_UNREACHABLE", `Cannot reach the gateway at ${transport.url}.`, {
        hint: "Check --gateway: it must be the URL of the gateway the node is linked to.",
        cause,
      });
    }
    throw new GbtError("NODE_UNREACHABLE", `Cannot reach the node's agent at ${transport.url}.`, {
      hint: "Start the node with `gbt serve`, or point --node-url at it (the agent answers on loopback).",
      cause,
    });
  }
}

function endpoint(base: string, path: string): string {
  try {
    return new URL(path, base).toString();
  } catch {
    throw new GbtError("USAGE", `--node-url ${base} is not a URL.`, {
      hint: "Give the node's base URL, e.g. http://127.0.0.1:8787.",
    });
  }
}

/** The body as JSON, or undefined when it is not JSON. */
export async function readAnswer(response: Response): Promise<{ text: string; json: unknown }> {
  const text = await response.text();
  try {
    return { text, json: JSON.parse(text) as unknown };
  } catch {
    return { text, json: undefined };
  }
}

/** Reads a job outcome; an error body becomes the GbtError of its code. */
export async function outcomeOf(
  transport: Pick<AgentTransport, "url" | "relay">,
  response: Response,
): Promise<JobOutcome> {
  const { text, json } = await readAnswer(response);
  const parsed = jobOutcomeSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  if (response.status === 404 && !transport.relay) {
    throw new GbtError("NOT_FOUND", `${answerer(transport)} serves no job endpoint (HTTP 404).`, {
      hint: "The agent answers only on a loopback listener; reach it from the node itself.",
    });
  }
  const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (error && typeof error.message === "string") throw refusedError(transport.url, response.status, error);
  throw new GbtError(
    "INVALID_OBJECT",
    `${answerer(transport)} answered HTTP ${response.status} without a job outcome.`,
    {
      details: { status: response.status, body: text.slice(0, 500) },
      hint: transport.relay
        ? "Check that --gateway points at the gbt gateway the node is linked to."
        : "Check that --node-url points at a gbt node.",
    },
  );
}

/**
 * An error body (OpenAI style, `code` in snake case) as the GbtError its wire code belongs to (or
 * of the same name), so a job refused before the agent saw it (by the relay, or the node's body
 * limit) exits with the class it would have had at the agent: a relay's `owner_not_allowed` is an
 * UNKNOWN_SIGNER, its `rate_limited` a BUSY.
 */
function refusedError(base: string, status: number, error: { code?: unknown; message?: unknown }): GbtError {
  const wire = typeof error.code === "string" ? error.code : "";
  const raw = wire.toUpperCase();
  const code: ErrorCode = Object.hasOwn(httpErrorCodes, wire)
    ? httpErrorCodes[wire as HttpErrorCode][2]
    : Object.hasOwn(errorCodes, raw)
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
