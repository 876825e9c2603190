import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { readJson } from "../http/body.js";
import type { GatewayEnv } from "../http/gateway-env.js";
import type { GatewayExtension, GatewayExtensionContext } from "./gateway-extension.js";

const ADMIN = "admin-token-for-tests-0123456789";
let dir: string;
let gateway: GatewayServer | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-gateway-ext-"));
});
afterEach(async () => {
  await gateway?.close(1_000);
  gateway = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const start = (extensions: GatewayExtension[]) =>
  startGatewayServer({
    config: parseGatewayConfig({ port: 0 }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    extensions,
  });

describe("gateway extensions", () => {
  it("answer their own routes with the gateway's state and errors, fall through otherwise, and close before the database", async () => {
    const events: string[] = [];
    let seen: GatewayExtensionContext | undefined;
    const echo: GatewayExtension = {
      name: "echo",
      start(context) {
        seen = context;
        events.push("start");
        return {
          routes: new Hono<GatewayEnv>()
            .post("/v1/echo", async (c) =>
              c.json({ body: await readJson(c, 1024), q: c.req.query("q") ?? null }),
            )
            .get("/v1/echo/admin", context.admin, (c) => c.text("ok"))
            .get("/v1/echo/consumer", context.apiKey, (c) => c.text(c.get("principal").accountId)),
          close() {
            // The database is still open while an extension closes.
            expect(context.db.open).toBe(true);
            events.push("close");
          },
        };
      },
    };
    gateway = await start([echo]);
    expect(seen?.ledger).toBe(gateway.ledger);
    expect(seen?.pool).toBe(gateway.pool);

    const echoed = await fetch(`${gateway.url}/v1/echo?q=1`, { method: "POST", body: '{"a":[1]}' });
    expect(await echoed.json()).toEqual({ body: { a: [1] }, q: "1" });

    const badJson = await fetch(`${gateway.url}/v1/echo`, { method: "POST", body: "{nope" });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe("invalid_json");

    const tooBig = await fetch(`${gateway.url}/v1/echo`, {
      method: "POST",
      body: JSON.stringify("x".repeat(4096)),
    });
    expect(tooBig.status).toBe(413);

    expect((await fetch(`${gateway.url}/v1/echo/admin`)).status).toBe(401);
    const admin = await fetch(`${gateway.url}/v1/echo/admin`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await admin.text()).toBe("ok");

    expect((await fetch(`${gateway.url}/v1/echo/consumer`)).status).toBe(401);
    const account = gateway.accounts.createAccount({ name: "c" });
    const key = gateway.accounts.createApiKey(account.id, "k").key;
    const consumer = await fetch(`${gateway.url}/v1/echo/consumer`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(await consumer.text()).toBe(account.id);

    // Routes the extension does not own still reach the gateway's own table.
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/v1/nowhere`)).status).toBe(404);

    await gateway.close(1_000);
    gateway = undefined;
    expect(events).toEqual(["start", "close"]);
  });

  it("a failing extension start fails the gateway start and closes the ones already started", async () => {
    const closed: string[] = [];
    const good: GatewayExtension = {
      name: "good",
      start: () => ({ close: () => void closed.push("good") }),
    };
    const bad: GatewayExtension = {
      name: "bad",
      start() {
        throw new Error("no chain");
      },
    };
    await expect(start([good, bad])).rejects.toThrow("no chain");
    expect(closed).toEqual(["good"]);
  });
});
