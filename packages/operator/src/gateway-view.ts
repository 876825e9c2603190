/**
 * The gateway's view of this node, read from its admin API (`GET /v1/gateway/nodes`): whether the
 * gateway routes to it (parked by the breaker? cooling down? below the floor?), how far its ramp-up
 * has gone, its health score. Read-only; the Operator quotes it as a source of facts.
 */
import { GbtError } from "@gbt/protocol";
import { type Address, isAddressEqual } from "viem";
import { z } from "zod";

const instanceViewSchema = z.object({
  id: z.string().max(200),
  nodeAddress: z.string().max(64),
  url: z.string().max(500).optional(),
  models: z.array(z.string().max(200)).max(100).optional(),
  status: z.string().max(32),
  breaker: z.string().max(32),
  probing: z.boolean().optional(),
  cooldownUntil: z.number().nullable().optional(),
  eligible: z.boolean(),
  rampFactor: z.number(),
  switchPenalty: z.number().optional(),
  declaredCapacity: z.number().optional(),
  inFlight: z.number().optional(),
  healthScore: z.number(),
  belowFloor: z.boolean().optional(),
  lastHeartbeatAt: z.number().optional(),
  tokPerSec: z.object({ benchmark: z.number().nullable(), observed: z.number().nullable() }).optional(),
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
  const fetchFn = options.fetch ?? fetch;
  return async (node) => {
    let response: Response;
    try {
      response = await fetchFn(new URL("/v1/gateway/nodes", options.gatewayUrl), {
        headers: { authorization: `Bearer ${options.adminToken}` },
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
    } catch (cause) {
      throw new GbtError("GATEWAY_UNREACHABLE", `No gateway answers at ${options.gatewayUrl}.`, {
        hint: "Check --gateway-url, or start the gateway (`gbt gateway serve`).",
        cause,
      });
    }
    if (response.status === 401 || response.status === 403) {
      throw new GbtError("UNAUTHORIZED", "The gateway refused the admin token.", {
        hint: "Pass that gateway's admin token with --gateway-admin-token-file.",
      });
    }
    if (!response.ok) {
      throw new GbtError("GATEWAY_UNREACHABLE", `The gateway answered HTTP ${response.status}.`);
    }
    const list = nodesListSchema.safeParse(await response.json().catch(() => undefined));
    if (!list.success) {
      throw new GbtError("INVALID_OBJECT", "The gateway's node list is malformed.", {
        hint: "Check that --gateway-url points at a gbt gateway.",
      });
    }
    const instances: GatewayNodeView[] = [];
    for (const entry of list.data.data) {
      const parsed = instanceViewSchema.safeParse(entry);
      if (!parsed.success) continue;
      const address = parsed.data.nodeAddress;
      if (/^0x[0-9a-fA-F]{40}$/.test(address) && isAddressEqual(address as Address, node)) {
        instances.push(parsed.data);
      }
    }
    return { url: options.gatewayUrl, instances };
  };
}
