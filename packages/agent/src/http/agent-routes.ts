/**
 * The agent's HTTP routes as a Hono sub-app, for whichever server hosts the agent (the node server
 * mounts it): `POST /agent/jobs` takes a signed Job of at most 64 KiB (413 beyond, before the agent
 * sees it) and answers its outcome with `agentOutcomeStatus` (executed jobs 200 whatever their
 * end, rejections 401 or 400); `GET /agent/jobs/:id` answers a job's outcome, 404 when this node
 * never accepted it; `GET /agent/allowlist` publishes the allowlist. The job's signature is its
 * authentication, so these routes need no API key; who may reach them at all is the host's rule.
 *
 * Failures are thrown as HttpErrors, never answered here: the host's one `onError` turns them
 * into the OpenAI-style error body with the status of protocol's table.
 */
import {
  agentOutcomeStatus,
  agentPaths,
  HttpError,
  MAX_JOB_BODY_BYTES,
  MAX_JOB_ID_LENGTH,
} from "@gbt/protocol";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Agent } from "../executor/agent.js";

/** What the routes need of an agent. */
export type AgentEndpoint = Pick<Agent, "submit" | "status" | "allowlist">;

/** The agent's routes; mount them with `app.route("/", agentRoutes(agent))`. */
export function agentRoutes(agent: AgentEndpoint): Hono {
  const app = new Hono();
  app.post(
    agentPaths.jobs,
    bodyLimit({
      maxSize: MAX_JOB_BODY_BYTES,
      onError: () => {
        throw new HttpError("request_too_large", `Request body over ${MAX_JOB_BODY_BYTES} bytes.`);
      },
    }),
    async (c) => {
      const body = Buffer.from(await c.req.arrayBuffer());
      const outcome = await agent.submit(body);
      return c.json(outcome, agentOutcomeStatus(outcome) as ContentfulStatusCode);
    },
  );
  app.all(agentPaths.jobs, () => {
    throw new HttpError("method_not_allowed", "Use POST.", null, { allow: "POST" });
  });
  app.get(agentPaths.allowlist, (c) => c.json(agent.allowlist()));
  app.get(agentPaths.jobPattern, (c) => {
    const jobId = c.req.param("id");
    if (jobId.length > MAX_JOB_ID_LENGTH) throw new HttpError("not_found", `No route GET ${c.req.path}.`);
    const outcome = agent.status(jobId);
    if (outcome === null || outcome === undefined) {
      throw new HttpError("not_found", `This node has no job ${jobId}.`);
    }
    return c.json(outcome);
  });
  return app;
}
