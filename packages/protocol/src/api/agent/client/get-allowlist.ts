/**
 * `GET /agent/allowlist`: the job types the agent accepts with their parameter schemas, and the
 * node and chain its jobs must be bound to. Served by the node only (the gateway relays jobs, not this).
 */
import { GbtError } from "../../../errors.js";
import { type PublishedAllowlist, publishedAllowlistSchema } from "../allowlist.js";
import { agentPaths } from "../paths.js";
import type { AgentTransport } from "./agent-client.js";
import { answerer, readAnswer } from "./agent-request.js";

export interface GetAllowlistParameters {
  signal?: AbortSignal | undefined;
}

export type GetAllowlistReturnType = PublishedAllowlist;

/** Reads the allowlist the agent publishes. */
export async function getAllowlist(
  client: AgentTransport,
  { signal }: GetAllowlistParameters = {},
): Promise<GetAllowlistReturnType> {
  if (client.relay) {
    throw new GbtError("USAGE", "The gateway relays jobs only; read the allowlist from the node itself.", {
      hint: "Give the node's URL instead of the gateway's.",
    });
  }
  const response = await client.request({ method: "GET", path: agentPaths.allowlist, signal });
  if (response.status === 404) {
    throw new GbtError("NOT_FOUND", `${answerer(client)} publishes no agent allowlist (HTTP 404).`, {
      hint: "Use a node that runs the agent (`gbt serve`), reached on loopback.",
    });
  }
  const { text, json } = await readAnswer(response);
  if (json === undefined) {
    throw new GbtError(
      "INVALID_OBJECT",
      `${answerer(client)} answered GET ${agentPaths.allowlist} with non-JSON (HTTP ${response.status}).`,
      {
        details: { status: response.status, body: text.slice(0, 300) },
        hint: "Check that --node-url points at a gbt node.",
      },
    );
  }
  const parsed = publishedAllowlistSchema.safeParse(json);
  if (!parsed.success) {
    throw new GbtError("INVALID_OBJECT", `${answerer(client)} published a malformed allowlist.`, {
      details: { issue: parsed.error.issues[0]?.message },
      hint: "Upgrade the node and the Operator to the same gbt version.",
    });
  }
  return parsed.data;
}
