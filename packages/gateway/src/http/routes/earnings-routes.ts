/**
 * `GET /v1/nodes/:node/earnings`: the node's earnings as this gateway's ledger states them,
 * `{ view: SignedObject<"EarningsView"> }` signed with the gateway key and addressed to the node
 * (see settlement/earnings-view.ts).
 *
 * Public, like a node's trust view and its settlement proof: on an open network what a node earned
 * is no secret (settlement posts every node's cumulative earnings on chain), and the view is bound
 * to one node by its audience, so it cannot be passed off as another's. The server's per-address
 * limit on `/v1/nodes/*` bounds the rate; an indexed read and a short per-node cache bound the work.
 */
import type { SignedObject } from "@gbt/protocol";
import { Hono } from "hono";
import type { LocalAccount } from "viem";
import type { GatewayDatabase } from "../../gateway-database.js";
import {
  EarningsReader,
  type EarningsSettlement,
  parseNode,
  signEarningsView,
} from "../../settlement/earnings-view.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";

export const EARNINGS_PATH = "/v1/nodes/:node/earnings";

export interface EarningsRoutesParts {
  db: GatewayDatabase;
  /** The gateway key: signs every view. */
  account: LocalAccount;
  /** The chain of the gateway's signatures (the config's `chainId`, as `GET /v1/gateway/info` says). */
  chainId: number;
  /** The config's `settlement` section, when the gateway settles on chain. */
  settlement?: EarningsSettlement | undefined;
  now?: () => number;
  /** How long a node's signed view is reused before it is computed again (default 10 s; 0: never). */
  cacheMs?: number;
  /** How long a node may rely on a view (default 300 s). */
  ttlSeconds?: number;
}

/** At most this many nodes' views are cached; past it the cache starts over. */
const MAX_CACHED = 4096;

export function earningsRoutes(parts: EarningsRoutesParts): GatewayRoutes {
  const now = parts.now ?? Date.now;
  const cacheMs = parts.cacheMs ?? 10_000;
  const reader = new EarningsReader(parts.db);
  const cache = new Map<string, { at: number; view: SignedObject<"EarningsView"> }>();
  return new Hono<GatewayEnv>().get(EARNINGS_PATH, named("node_earnings"), async (c) => {
    const node = parseNode(c.req.param("node"));
    const at = now();
    const cached = cache.get(node);
    if (cached && at - cached.at < cacheMs && at >= cached.at) return c.json({ view: cached.view });
    const payload = reader.view({
      node,
      gateway: parts.account.address,
      settlement: parts.settlement,
      now: () => at,
    });
    const view = await signEarningsView(parts.account, payload, {
      chainId: parts.chainId,
      now: () => at,
      ...(parts.ttlSeconds !== undefined ? { ttlSeconds: parts.ttlSeconds } : {}),
    });
    if (cacheMs > 0) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(node, { at, view });
    }
    return c.json({ view });
  });
}
