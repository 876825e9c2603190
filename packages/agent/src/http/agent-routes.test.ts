import { errorBody, toHttpError } from "@gbt/protocol";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { describe, expect, it } from "vitest";
import type { AgentOutcome } from "../executor/agent.js";
import { type AgentEndpoint, agentRoutes } from "./agent-routes.js";

/** An agent that answers each body with the outcome it names, and knows one job. */
function echoAgent(): AgentEndpoint & { bodies: number[] } {
  const bodies: number[] = [];
  return {
    bodies,
    async submit(body) {
      bodies.push((body as Buffer).length);
      return JSON.parse((body as Buffer).toString("utf8")) as AgentOutcome;
    },
    status: (jobId) => (jobId === "known" ? { jobId, state: "succeeded" } : null),
    allowlist: () => ({ version: 7, types: [] }),
  };
}

/** The routes mounted as a host mounts them, with the one error mapping a host has. */
function host(agent: AgentEndpoint) {
  const app = new Hono();
  app.route("/", agentRoutes(agent));
  app.onError((error, c) => {
    const http = toHttpError(error, "node");
    return c.json(errorBody(http), http.status as ContentfulStatusCode, http.headers);
  });
  return app;
}

const post = (app: Hono, body: string, headers: Record<string, string> = {}) =>
  app.request("/agent/jobs", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });

describe("agent routes", () => {
  it("answers executed jobs 200, auth rejections 401, other rejections 400, with the outcome as body", async () => {
    const app = host(echoAgent());
    expect((await post(app, JSON.stringify({ state: "succeeded" }))).status).toBe(200);
    expect((await post(app, JSON.stringify({ state: "failed", code: "PREFLIGHT_FAILED" }))).status).toBe(200);
    const stranger = await post(app, JSON.stringify({ state: "rejected", code: "UNKNOWN_SIGNER" }));
    expect(stranger.status).toBe(401);
    expect(stranger.headers.get("content-type")).toBe("application/json");
    expect(await stranger.json()).toEqual({ state: "rejected", code: "UNKNOWN_SIGNER" });
    expect((await post(app, JSON.stringify({ state: "rejected", code: "INVALID_PARAMS" }))).status).toBe(400);
  });

  it("refuses bodies over 64 KiB with 413 before the agent sees them, declared or not", async () => {
    const agent = echoAgent();
    const app = host(agent);
    const big = JSON.stringify({ state: "succeeded", pad: "x".repeat(70_000) });
    const declared = await post(app, big, { "content-length": String(big.length) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await app.request("/agent/jobs", {
      method: "POST",
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(agent.bodies).toEqual([]);
  });

  it("answers a job's status, 404 for a job it never accepted, 405 for GET /agent/jobs, and the allowlist", async () => {
    const app = host(echoAgent());
    expect(await (await app.request("/agent/jobs/known")).json()).toEqual({
      jobId: "known",
      state: "succeeded",
    });
    const unknown = await app.request("/agent/jobs/other");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      "This node has no job other.",
    );
    expect((await app.request(`/agent/jobs/${"x".repeat(201)}`)).status).toBe(404);
    const wrongMethod = await app.request("/agent/jobs");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(await (await app.request("/agent/allowlist")).json()).toEqual({ version: 7, types: [] });
  });
});
