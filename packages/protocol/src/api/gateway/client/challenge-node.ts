/** `POST /v1/gateway/nodes/:id/challenge` with the admin token: canary and throughput challenges of a node, now. */
import { gatewayPaths } from "../paths.js";
import { type ChallengeResponse, challengeResponseSchema } from "../schemas.js";
import type { GatewayTransport } from "./gateway-request.js";

export interface ChallengeNodeParameters {
  /** The node's address (its instance id). */
  node: string;
  /** Default both. */
  kinds?: readonly ("canary" | "benchmark")[];
  /** A throughput challenge decodes a long answer: allow it more than the default timeout. */
  timeoutMs?: number;
}
export type ChallengeNodeReturnType = ChallengeResponse;

export function challengeNode(
  client: GatewayTransport,
  parameters: ChallengeNodeParameters,
): Promise<ChallengeNodeReturnType> {
  return client.request({
    method: "POST",
    path: gatewayPaths.nodeChallenge(parameters.node.toLowerCase()),
    auth: "admin",
    body: parameters.kinds === undefined ? {} : { kinds: parameters.kinds },
    schema: challengeResponseSchema,
    what: "challenge results",
    timeoutMs: parameters.timeoutMs ?? 120_000,
    hints: { NOT_FOUND: "List the pool with `gbt gateway nodes`." },
  });
}
