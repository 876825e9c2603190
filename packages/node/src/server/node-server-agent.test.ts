import type { AgentEndpoint, AgentOutcome } from "@gbt/agent";
import type { PublishedAllowlist } from "@gbt/protocol";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, type NodeServerOptions, startNodeServer } from "./node-server.js";

const logger = pino({ level: "silent" });
const servers: NodeServer[] = [];

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
    allowlist: () => ({ version: 7, types: [{ type: "status.read" }] }) as unknown as PublishedAllowlist,
  };
}

async function serve(extra: Partial<NodeServerOptions>) {
  const server = await startNodeServer({ backend: createScriptedBackend(), logger, capacity: 1, ...extra });
  servers.push(server);
  return { server, url: server.url.replace("0.0.0.0", "127.0.0.1") };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

const post = (url: string, body: string) =>
  fetch(`${url}/agent/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body });

describe("node server: agent routes and the drain switch", () => {
  it("answers executed jobs 200, auth rejections 401, other rejections 400, without an API key", async () => {
    const agent = echoAgent();
    const { url } = await serve({ agent, requireApiKey: true });
    expect((await post(url, JSON.stringify({ state: "succeeded" }))).status).toBe(200);
    expect((await post(url, JSON.stringify({ state: "rolled_back", code: "INTERNAL" }))).status).toBe(200);
    const unknown = await post(url, JSON.stringify({ state: "rejected", code: "UNKNOWN_SIGNER" }));
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toEqual({ state: "rejected", code: "UNKNOWN_SIGNER" });
    expect((await post(url, JSON.stringify({ state: "rejected", code: "INVALID_PARAMS" }))).status).toBe(400);
    expect((await fetch(`${url}/agent/jobs/known`)).status).toBe(200);
    expect((await fetch(`${url}/agent/jobs/other`)).status).toBe(404);
    const allowlist = await fetch(`${url}/agent/allowlist`);
    expect(await allowlist.json()).toEqual({ version: 7, types: [{ type: "status.read" }] });
    // Chat still needs its key.
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
  });

  it("refuses bodies over 64 KiB before the agent sees them", async () => {
    const agent = echoAgent();
    const { url } = await serve({ agent });
    const response = await post(url, JSON.stringify({ state: "succeeded", pad: "x".repeat(70_000) }));
    expect(response.status).toBe(413);
    expect(agent.bodies).toEqual([]);
  });

  it("serves /agent/* only on loopback unless agentOnAnyHost, and 404 without an agent", async () => {
    const keys = { verify: () => true, hasKeys: () => true };
    const wide = await serve({
      agent: echoAgent(),
      host: "0.0.0.0",
      requireApiKey: true,
      apiKeys: keys as never,
    });
    expect((await post(wide.url, JSON.stringify({ state: "succeeded" }))).status).toBe(404);
    const allowed = await serve({ agent: echoAgent(), host: "0.0.0.0", agentOnAnyHost: true });
    expect((await post(allowed.url, JSON.stringify({ state: "succeeded" }))).status).toBe(200);
    const none = await serve({});
    expect((await post(none.url, JSON.stringify({ state: "succeeded" }))).status).toBe(404);
  });

  it("while drained, chat gets 503 draining with Retry-After and /healthz says so; resume serves again", async () => {
    const { server, url } = await serve({});
    const chat = () =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "hi" }] }),
      });
    server.setDraining(true);
    expect(server.isDraining()).toBe(true);
    const refused = await chat();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("draining");
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "draining", draining: true });
    server.setDraining(false);
    expect((await chat()).status).toBe(200);
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ status: "ok", draining: false });
  });
});
