/**
 * The admin API (admin token): `GET /v1/gateway/nodes` (the pool, with each node's trust),
 * `GET|POST /v1/gateway/accounts`, `POST /v1/gateway/accounts/:id/keys`,
 * `GET /v1/gateway/ledger/check`. Mounted after every feature: any `/v1/gateway/…` route nobody
 * answered before needs the admin token, and without one it is a 401 before it is a 404.
 */
import { gatewayPaths } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AccountStore } from "../../auth/accounts.js";
import type { Ledger } from "../../billing/ledger.js";
import type { InstancePool } from "../../pool/instance-pool.js";
import { readJson } from "../body.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";
import { parseInput } from "../validate.js";

export interface AdminParts {
  admin: MiddlewareHandler<GatewayEnv>;
  pool: Pick<InstancePool, "live">;
  accounts: Pick<AccountStore, "listAccounts" | "createAccount" | "createApiKey">;
  ledger: Pick<Ledger, "checkInvariants">;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  /** A node's trust (tier, reputation, evidence…), when verification runs. */
  nodeTrust?: (instanceId: string) => unknown;
}

const newAccount = z.object({ name: z.string().optional(), keyName: z.string().optional() }).nullable();
const newKey = z.object({ name: z.string().optional() }).nullable();
const bodyProblem = ({ path, message }: { path: string; message: string }) =>
  `Body ${path || "(root)"}: ${message}.`;

export function adminRoutes(parts: AdminParts): GatewayRoutes {
  const { pool, accounts, ledger } = parts;
  const app = new Hono<GatewayEnv>();
  app.use("/v1/gateway/*", parts.admin);
  app.get(gatewayPaths.nodes, named("admin_nodes"), (c) => {
    const data = pool.live().map(({ backend, modelDigests, lastHealth, ...instance }) => {
      const trust = (parts.nodeTrust?.(instance.id) ?? null) as {
        tier?: string;
        reputation?: number;
        evidence?: string[];
      } | null;
      return {
        ...instance,
        // Without verification nothing is measured: every node is community, reputation unknown.
        tier: trust?.tier ?? "community",
        reputation: trust?.reputation ?? null,
        evidence: trust?.evidence ?? [],
        trust,
        backend,
        modelDigests,
        lastHealth,
      };
    });
    return c.json({ object: "list", data });
  });
  app.get(gatewayPaths.accounts, named("admin_accounts"), (c) =>
    c.json({ object: "list", data: accounts.listAccounts() }),
  );
  app.post(gatewayPaths.accounts, named("admin_accounts"), async (c) => {
    const body = parseInput(newAccount, await readJson(c, 64 * 1024), bodyProblem);
    const account = accounts.createAccount({ name: body?.name ?? "" });
    const key = accounts.createApiKey(account.id, body?.keyName ?? "default");
    return c.json({ account, key }, 201);
  });
  app.post("/v1/gateway/accounts/:id/keys", named("admin_keys"), async (c) => {
    const body = parseInput(newKey, await readJson(c, 64 * 1024), bodyProblem);
    return c.json(accounts.createApiKey(c.req.param("id"), body?.name ?? "default"), 201);
  });
  app.get(gatewayPaths.ledgerCheck, named("admin_ledger"), async (c) => {
    await parts.settled();
    const report = ledger.checkInvariants();
    return c.json(report, report.ok ? 200 : 500);
  });
  return app;
}
