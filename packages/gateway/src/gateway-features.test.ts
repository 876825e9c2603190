import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, type GatewayServerOptions, startGatewayServer } from "./gateway-server.js";
import { readJson } from "./http/body.js";
import type { GatewayEnv } from "./http/gateway-env.js";
import { createModelRegistry } from "./registry/model-registry.js";
import { createJobRelay } from "./relay/job-relay.js";
import type { Settlement, SettlementPorts } from "./settlement/settlement.js";
import { createVerification } from "./verification/verification.js";

const ADMIN = "admin-token-for-tests-0123456789";
let dir: string;
let gateway: GatewayServer | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-gateway-features-"));
});
afterEach(async () => {
  await gateway?.close(1_000);
  gateway = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const start = (features: Pick<GatewayServerOptions, "registry" | "relay" | "verification" | "settlement">) =>
  startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      verification: { enabled: false },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    ...features,
  });

/** A settlement stand-in: records what it was given and when it closes. */
function probe(events: string[], onStart: (ports: SettlementPorts) => void = () => undefined): Settlement {
  return {
    name: "probe",
    settleNow: () => Promise.reject(new Error("not a chain")),
    start(ports) {
      onStart(ports);
      events.push("start");
      return {
        routes: new Hono<GatewayEnv>()
          .post("/v1/settlement/echo", async (c) =>
            c.json({ body: await readJson(c, 1024), q: c.req.query("q") }),
          )
          .get("/v1/settlement/admin", ports.admin, (c) => c.text("ok")),
        close() {
          // The database is still open while a feature closes.
          expect(ports.db.open).toBe(true);
          events.push("close");
        },
      };
    },
  };
}

describe("gateway features", () => {
  it("answer their own routes with the gateway's errors, fall through otherwise, and close before the database", async () => {
    const events: string[] = [];
    let seen: SettlementPorts | undefined;
    const verification = createVerification();
    gateway = await start({
      registry: createModelRegistry(),
      relay: createJobRelay(),
      verification,
      settlement: probe(events, (ports) => {
        seen = ports;
      }),
    });
    // Narrow ports: the ledger's earnings, never the whole gateway.
    expect(Object.keys(seen ?? {}).sort()).toEqual(
      ["account", "admin", "db", "ledger", "logger", "now", "settled", "settlement"].sort(),
    );
    expect(seen?.ledger).toBe(gateway.ledger);

    const echoed = await fetch(`${gateway.url}/v1/settlement/echo?q=1`, {
      method: "POST",
      body: '{"a":[1]}',
    });
    expect(await echoed.json()).toEqual({ body: { a: [1] }, q: "1" });
    expect(echoed.headers.get("x-gbt-gateway-ms")).not.toBeNull();
    const badJson = await fetch(`${gateway.url}/v1/settlement/echo`, { method: "POST", body: "{nope" });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const tooBig = await fetch(`${gateway.url}/v1/settlement/echo`, {
      method: "POST",
      body: JSON.stringify("x".repeat(4096)),
    });
    expect(tooBig.status).toBe(413);
    expect((await fetch(`${gateway.url}/v1/settlement/admin`)).status).toBe(401);
    const admin = await fetch(`${gateway.url}/v1/settlement/admin`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(await admin.text()).toBe("ok");

    // Each feature's routes, mounted once: the registry, the relay, verification (admin only).
    expect((await fetch(`${gateway.url}/v1/registry/models`)).status).toBe(200);
    const relayed = await fetch(
      `${gateway.url}/v1/nodes/${privateKeyToAccount(generatePrivateKey()).address}/jobs/j1`,
    );
    expect(((await relayed.json()) as { error: { code: string } }).error.code).toBe("unknown_node");
    expect((await fetch(`${gateway.url}/v1/gateway/evidence`)).status).toBe(401);
    const evidence = await fetch(`${gateway.url}/v1/gateway/evidence`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(evidence.status).toBe(200);

    // Routes no feature owns still reach the gateway's own table.
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/v1/nowhere`)).status).toBe(404);

    await gateway.close(1_000);
    expect(gateway.db.open).toBe(false);
    gateway = undefined;
    expect(events).toEqual(["start", "close"]);
    await expect(verification.challenge("0x0000000000000000000000000000000000000001")).rejects.toThrow(
      /not started/,
    );
  });

  it("a failing feature start fails the gateway start and closes the ones already started", async () => {
    const verification = createVerification();
    const failing: Settlement = {
      ...probe([]),
      start() {
        throw new Error("no chain");
      },
    };
    await expect(start({ verification, settlement: failing })).rejects.toThrow("no chain");
    await expect(verification.challenge("0x0000000000000000000000000000000000000001")).rejects.toThrow(
      /not started/,
    );
  });
});
