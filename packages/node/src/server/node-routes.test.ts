import type { AgentEndpoint } from "@gbt/agent";
import type { PublishedAllowlist } from "@gbt/protocol";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { createNodeAuth } from "./node-auth.js";
import { createNodeMetrics } from "./node-metrics.js";
import { nodeRoutes } from "./node-routes.js";

const agent: AgentEndpoint = {
  submit: async () => ({ jobId: "j", state: "succeeded" }),
  status: (jobId) => (jobId === "known" ? { jobId, state: "succeeded" } : null),
  allowlist: () => ({ version: 1, types: [] }) as PublishedAllowlist,
};

function routes(extra: { agentServed?: boolean; requireApiKey?: boolean } = {}) {
  const metrics = createNodeMetrics();
  const app = nodeRoutes({
    backend: createScriptedBackend(),
    capacity: 1,
    metrics,
    auth: createNodeAuth({
      requireApiKey: extra.requireApiKey ?? true,
      apiKeys: { verify: (key) => key === "gbt_sk_good" },
      gatewayLink: { isLinkToken: (token) => token === "link-token" },
    }),
    logger: pino({ level: "silent" }),
    agent,
    agentServed: extra.agentServed ?? true,
    inFlight: () => 0,
    draining: () => false,
  });
  return { app, metrics };
}

const key = { authorization: "Bearer gbt_sk_good" };

describe("node routes (Hono, no socket)", () => {
  it("checks the API key before answering 404, except on /healthz and the agent's routes", async () => {
    const { app } = routes();
    expect((await app.request("/healthz")).status).toBe(200);
    const unknown = await app.request("/nope");
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get("www-authenticate")).toBe("Bearer");
    expect((await app.request("/nope", { headers: key })).status).toBe(404);
    expect((await app.request("/v1/models", { headers: key })).status).toBe(200);
    expect(
      (await app.request("/v1/models", { headers: { authorization: "Bearer link-token" } })).status,
    ).toBe(200);
    expect((await app.request("/agent/jobs/known")).status).toBe(200);
    expect((await app.request("/agent")).status).toBe(404);
    // A malformed percent-escape is a 400 on the node too, before any route or key check.
    const malformed = await app.request("/agent/jobs/%E0%A4%A");
    expect([malformed.status, ((await malformed.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      "invalid_value",
    ]);
    expect((await app.request("/agent/other")).status).toBe(404);
    expect((await app.request("/agent/allowlist", { method: "POST" })).status).toBe(404);
  });

  it("opens the agent's routes off loopback only to the gateway's link token", async () => {
    const { app } = routes({ agentServed: false });
    expect((await app.request("/agent/allowlist", { headers: key })).status).toBe(404);
    expect(
      (await app.request("/agent/allowlist", { headers: { authorization: "Bearer link-token" } })).status,
    ).toBe(200);
  });

  it("counts each request under its route's name, failures as error", async () => {
    const { app, metrics } = routes({ requireApiKey: false });
    await app.request("/agent/jobs", { method: "POST", body: "{}" });
    await app.request("/agent/jobs/known");
    await app.request("/agent/jobs/unknown");
    await app.request("/agent/allowlist");
    await app.request("/v1/models");
    await app.request("/nope");
    const text = await metrics.registry.metrics();
    for (const line of [
      'gbt_node_requests_total{route="agent_submit",status="200"} 1',
      'gbt_node_requests_total{route="agent_status",status="200"} 1',
      'gbt_node_requests_total{route="agent_allowlist",status="200"} 1',
      'gbt_node_requests_total{route="models",status="200"} 1',
      'gbt_node_requests_total{route="error",status="404"} 2',
    ]) {
      expect(text).toContain(line);
    }
  });
});
