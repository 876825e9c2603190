/**
 * Verification's routes: `GET /v1/gateway/nodes/:id/trust` (public: a node's operator reads its
 * own standing), `POST /v1/gateway/nodes/:id/challenge` (admin: challenge a node now) and
 * `GET /v1/gateway/evidence[/:id]` (admin: the evidence records, newest first).
 */
import { gatewayPaths } from "@gbt/protocol";
import { Hono } from "hono";
import { z } from "zod";
import { readJson } from "../http/body.js";
import { methodNotAllowed } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../http/gateway-env.js";
import { parseInput, queryProblem } from "../http/validate.js";
import type { TrustView } from "./trust-score.js";
import type { Verifier } from "./verifier.js";

const challengeBody = z
  .strictObject({
    kinds: z
      .array(z.enum(["canary", "benchmark"]))
      .min(1)
      .max(2)
      .optional(),
  })
  .nullable();
const evidenceQuery = z.strictObject({
  node: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export function verificationRoutes(verifier: Verifier): GatewayRoutes {
  const { admin } = verifier.ports;
  return new Hono<GatewayEnv>()
    .get(`${gatewayPaths.nodes}/:id/trust`, named("verification_trust"), (c) => {
      const id = c.req.param("id").toLowerCase();
      // Public: a node's operator reads its own standing (`gbt node status`) without the admin token.
      verifier.instance(id);
      return c.json({ id, ...(verifier.views.view(id) as TrustView) });
    })
    .all(`${gatewayPaths.nodes}/:id/trust`, () => {
      throw methodNotAllowed("GET");
    })
    .post(`${gatewayPaths.nodes}/:id/challenge`, named("verification_challenge"), admin, async (c) => {
      const id = c.req.param("id").toLowerCase();
      const body = parseInput(
        challengeBody,
        await readJson(c, 8 * 1024),
        () => 'The body must be {} or {"kinds": ["canary", "benchmark"]}.',
      );
      const results = await verifier.challenge(id, body?.kinds ?? ["canary", "benchmark"]);
      return c.json({ id, results, trust: verifier.views.view(id) });
    })
    .all(`${gatewayPaths.nodes}/:id/challenge`, () => {
      throw methodNotAllowed("POST");
    })
    .use(gatewayPaths.evidence, admin)
    .use(`${gatewayPaths.evidence}/:id`, admin)
    .get(gatewayPaths.evidence, named("verification_evidence"), (c) => {
      const query = parseInput(evidenceQuery, c.req.query(), queryProblem, "Use ?node=0x…&limit=1..500.");
      return c.json({
        object: "list",
        data: verifier.store.listEvidence({
          ...(query.node ? { instanceId: query.node.toLowerCase() } : {}),
          ...(query.limit ? { limit: query.limit } : {}),
        }),
      });
    })
    .get(`${gatewayPaths.evidence}/:id`, named("verification_evidence"), (c) =>
      c.json(verifier.store.getEvidence(c.req.param("id"))),
    )
    .all(gatewayPaths.evidence, () => {
      throw methodNotAllowed("GET");
    })
    .all(`${gatewayPaths.evidence}/:id`, () => {
      throw methodNotAllowed("GET");
    });
}
