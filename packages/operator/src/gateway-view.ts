/**
 * The gateway's view of this node, read from its admin API (`GET /v1/gateway/nodes`) with
 * @gbt/protocol's gateway client: whether the gateway routes to it (parked by the breaker?
 * cooling down? below the floor?), how far its ramp-up has gone, its health score. Read-only;
 * the Operator quotes it as a source of facts.
 *
 * The Operator reads only the fields it quotes, typed as the gateway API's node schema types
 * them, and skips an entry it cannot read instead of failing: the other instances are still facts.
 */
import { createGatewayClient, gatewayNodeSchema, gatewayPaths } from "@gbt/protocol";
import { type Address, isAddressEqual } from "viem";
import { z } from "zod";

const instanceViewSchema = z.object({
  ...gatewayNodeSchema.pick({
    id: true,
    nodeAddress: true,
    status: true,
    breaker: true,
    eligible: true,
    rampFactor: true,
    healthScore: true,
  }).shape,
  ...gatewayNodeSchema
    .pick({
      url: true,
      models: true,
      probing: true,
      cooldownUntil: true,
      switchPenalty: true,
      declaredCapacity: true,
      inFlight: true,
      belowFloor: true,
      lastHeartbeatAt: true,
      tokPerSec: true,
    })
    .partial().shape,
});
export type GatewayNodeView = z.infer<typeof instanceViewSchema>;

const nodesListSchema = z.object({ data: z.array(z.unknown()).max(10_000) });

export interface GatewayViewOptions {
  gatewayUrl: string;
  adminToken: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** What the Operator asks: the gateway's instances of one node (none when it is not registered). */
export type GatewayViewSource = (node: Address) => Promise<{ url: string; instances: GatewayNodeView[] }>;

/** Reads the gateway's pool and keeps the instances of `node`; malformed entries are skipped. */
export function gatewayViewSource(options: GatewayViewOptions): GatewayViewSource {
  // Made on each ask: a bad --gateway-url is then a failed fact, as an unreachable gateway is.
  const client = () =>
    createGatewayClient({
      url: options.gatewayUrl,
      adminToken: options.adminToken,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      hints: {
        unreachable: "Check --gateway-url, or start the gateway (`gbt gateway serve`).",
        adminToken: "Pass that gateway's admin token with --gateway-admin-token-file.",
        shape: "Check that --gateway-url points at a gbt gateway.",
      },
    });
  return async (node) => {
    const list = await client().request({
      path: gatewayPaths.nodes,
      auth: "admin",
      schema: nodesListSchema,
      what: "node list",
      maxBytes: 64 * 1024 * 1024,
    });
    const instances: GatewayNodeView[] = [];
    for (const entry of list.data) {
      const parsed = instanceViewSchema.safeParse(entry);
      if (parsed.success && isAddressEqual(parsed.data.nodeAddress as Address, node)) {
        instances.push(parsed.data);
      }
    }
    return { url: options.gatewayUrl, instances };
  };
}
