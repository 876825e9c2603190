/**
 * The gateway's signed view of this node's earnings (`GET /v1/nodes/:node/earnings`, public), read
 * with @gbt/protocol's gateway client and verified before the Operator quotes any of it: signed by
 * the gateway's key (a pinned one, else the one `GET /v1/gateway/info` names), addressed to this
 * node, unexpired. What answers "how much did I earn this week?".
 */
import {
  createGatewayClient,
  fetchEarningsView,
  type VerifiedEarningsView,
  verifyEarningsView,
} from "@gbt/protocol";
import type { Address } from "viem";

export interface EarningsViewOptions {
  gatewayUrl: string;
  /** The gateway key the node pins (node config `link.gatewayAddress`); else the gateway's info says. */
  gatewayAddress?: Address | undefined;
  fetch?: typeof fetch;
  timeoutMs?: number;
  now?: () => number;
}

/** What the Operator asks: this node's verified earnings view at one gateway. */
export type EarningsViewSource = (node: Address) => Promise<{ url: string; view: VerifiedEarningsView }>;

export function earningsViewSource(options: EarningsViewOptions): EarningsViewSource {
  const client = () =>
    createGatewayClient({
      url: options.gatewayUrl,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      hints: {
        unreachable: "Check the gateway URL (gateway.url in the node config), or start the gateway.",
        shape: "Check that the gateway URL points at a gbt gateway.",
      },
    });
  return async (node) => {
    const gateway = client();
    const info = await gateway.getInfo();
    const view = await verifyEarningsView(await fetchEarningsView(gateway, node), {
      gateway: options.gatewayAddress ?? info.address,
      node,
      chainId: info.chainId,
      ...(options.now ? { now: options.now } : {}),
    });
    return { url: options.gatewayUrl, view };
  };
}
