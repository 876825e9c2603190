/**
 * The running node as one service: the node server (startServe), the agent that takes owners'
 * signed jobs (openNodeAgent) and the gateway link, started in that order and stopped in one
 * order (link, server, backend, node database, then the agent's stores). `gbt serve` is flags →
 * startNode() → print.
 */
import { isGbtError, isLoopbackUrl } from "@gbt/protocol";
import { openNodeAgent } from "./agent/node-agent.js";
import { type RunningNode, type ServeParameters, startServe } from "./serve.js";

export interface StartNodeParameters extends Omit<ServeParameters, "agent"> {
  /** Run the agent (default true). */
  agent?: boolean;
}

export interface StartedNode extends RunningNode {
  /**
   * The agent's state: `served` when its routes answer on this listener (loopback), `unreachable`
   * when it runs but this non-loopback listener does not serve its routes, `off` when the node key
   * is encrypted and no passphrase was given (the agent signs every result, so it needs the key).
   */
  agent: "served" | "unreachable" | "off";
}

/** Starts the node: agent stores and key first, then the server and backend, then the link. */
export async function startNode(parameters: StartNodeParameters): Promise<StartedNode> {
  const { agent: withAgent = true, ...serve } = parameters;
  // An encrypted node key without a passphrase still serves inference; only the agent, which
  // signs every JobResult, needs the key unlocked.
  const agent = withAgent
    ? await openNodeAgent({
        paths: serve.paths,
        logger: serve.logger,
        ...(serve.passphrase !== undefined ? { passphrase: serve.passphrase } : {}),
      }).catch((error: unknown) => {
        if (isGbtError(error, "PASSPHRASE_REQUIRED")) return undefined;
        throw error;
      })
    : undefined;
  const node = await startServe({
    ...serve,
    ...(agent ? { agent: agent.endpoint } : {}),
    // A claim adds an owner: the agent takes the new owner's jobs at once.
    onClaimed: async (owner) => {
      await agent?.reloadOwners();
      await serve.onClaimed?.(owner);
    },
  }).catch((error: unknown) => {
    agent?.close();
    throw error;
  });
  agent?.attach(node);
  return {
    ...node,
    agent: agent === undefined ? "off" : isLoopbackUrl(node.server.url) ? "served" : "unreachable",
    async close(deadlineMs?: number) {
      try {
        await node.close(deadlineMs);
      } finally {
        agent?.close();
      }
    },
  };
}
