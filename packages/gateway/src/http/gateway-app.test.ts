import { GbtError } from "@gbt/protocol";
import { Hono } from "hono";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createGatewayMetrics } from "../gateway-metrics.js";
import { apiKey } from "./api-key.js";
import { readJson } from "./body.js";
import { errorScope, methodNotAllowed } from "./errors.js";
import { createGatewayApp, named } from "./gateway-app.js";
import type { GatewayEnv } from "./gateway-env.js";
import { requireAdmin } from "./require-admin.js";

const ADMIN = "admin-token-for-http-tests-0123";
const KEY = `gbt_gk_${"a".repeat(43)}`;

function app() {
  const metrics = createGatewayMetrics();
  const accounts = {
    authenticate: (key: unknown) => (key === KEY ? { accountId: "acct_1", keyId: "key_1" } : null),
  };
  const routes = new Hono<GatewayEnv>()
    .post("/v1/echo", named("echo"), async (c) => c.json({ body: await readJson(c, 64) }))
    .all("/v1/echo", () => {
      throw methodNotAllowed("POST");
    })
    .get("/v1/mine", apiKey(accounts), (c) => c.text(c.get("principal").accountId))
    .get("/v1/admin", requireAdmin(ADMIN), (c) => c.text("ok"))
    .get("/v1/chain", errorScope("chain", "settlement"), () => {
      throw new GbtError("INSUFFICIENT_FUNDS", "Settlement is not funded.");
    })
    .get("/v1/bug", () => {
      throw new Error("secret detail");
    });
  return { metrics, app: createGatewayApp({ metrics, logger: pino({ level: "silent" }), routes: [routes] }) };
}

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string; type: string; message: string } }).error;

describe("the gateway's Hono app (no socket)", () => {
  it("stamps x-gbt-gateway-ms on answers and on errors alike", async () => {
    const { app: gateway } = app();
    const ok = await gateway.request("/v1/echo", { method: "POST", body: '{"a":1}' });
    expect(await ok.json()).toEqual({ body: { a: 1 } });
    expect(Number(ok.headers.get("x-gbt-gateway-ms"))).toBeGreaterThanOrEqual(0);
    const missing = await gateway.request("/v1/nowhere?x=1");
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toMatchObject({ code: "not_found", message: "No route GET /v1/nowhere." });
    expect(missing.headers.get("x-gbt-gateway-ms")).not.toBeNull();
  });

  it("answers 400 to a malformed percent-escape in the path, on any route or none", async () => {
    const { app: gateway } = app();
    for (const path of ["/v1/mine/%E0%A4%A", "/v1/nowhere/%zz", "/v1/echo%"]) {
      const response = await gateway.request(path);
      expect([response.status, (await errorOf(response)).code]).toEqual([400, "invalid_value"]);
    }
    // A well-formed escape is routed as usual.
    expect((await gateway.request("/v1/nowhere/%41")).status).toBe(404);
  });

  it("answers bodies that are not JSON, too large, or sent with the wrong method from the one table", async () => {
    const { app: gateway } = app();
    const bad = await gateway.request("/v1/echo", { method: "POST", body: "{nope" });
    expect([bad.status, (await errorOf(bad)).code]).toEqual([400, "invalid_json"]);
    const big = await gateway.request("/v1/echo", { method: "POST", body: JSON.stringify("x".repeat(100)) });
    expect([big.status, (await errorOf(big)).code]).toEqual([413, "request_too_large"]);
    const wrong = await gateway.request("/v1/echo", { method: "PUT" });
    expect([wrong.status, wrong.headers.get("allow")]).toEqual([405, "POST"]);
  });

  it("apiKey() and requireAdmin() answer 401 with www-authenticate, and let the right token through", async () => {
    const { app: gateway } = app();
    const noKey = await gateway.request("/v1/mine");
    expect([noKey.status, (await errorOf(noKey)).code]).toEqual([401, "invalid_api_key"]);
    expect(noKey.headers.get("www-authenticate")).toBe("Bearer");
    expect(
      await (await gateway.request("/v1/mine", { headers: { authorization: `Bearer ${KEY}` } })).text(),
    ).toBe("acct_1");
    const wrongAdmin = await gateway.request("/v1/admin", { headers: { authorization: `Bearer ${KEY}` } });
    expect([wrongAdmin.status, (await errorOf(wrongAdmin)).code]).toEqual([401, "invalid_admin_token"]);
    expect(
      await (await gateway.request("/v1/admin", { headers: { authorization: `Bearer ${ADMIN}` } })).text(),
    ).toBe("ok");
  });

  it("maps errors under the route's scope, and hides what it does not know", async () => {
    const { app: gateway, metrics } = app();
    const chain = await gateway.request("/v1/chain");
    expect([chain.status, (await errorOf(chain)).code]).toEqual([502, "insufficient_funds"]);
    const bug = await gateway.request("/v1/bug");
    const error = await errorOf(bug);
    expect([bug.status, error.code, error.type]).toEqual([500, "internal_error", "server_error"]);
    expect(error.message).not.toContain("secret");
    await gateway.request("/v1/echo", { method: "POST", body: "{}" });
    const counted = await metrics.registry.metrics();
    expect(counted).toMatch(/gbt_gateway_requests_total\{route="echo",status="200"\} 1/);
    expect(counted).toMatch(/gbt_gateway_requests_total\{route="error",status="500"\} 1/);
  });
});
