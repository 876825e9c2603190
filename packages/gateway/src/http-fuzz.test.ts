/**
 * A seeded HTTP fuzz of a real gateway: ~600 mutated requests over raw sockets and fetch (random
 * methods over the real routes, broken escapes, bad headers and framing, JSON mutations of a chat
 * body, with and without the API key and the admin token). No answer may be a 5xx, every JSON
 * error is `{error: {message, type, code}}`, and afterwards the gateway still serves a chat with
 * nothing held and nothing in flight. The seed is in the test's name: a failure replays exactly.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, startFakeNode } from "./testing/fake-node.js";
import { gatewayFuzzRoutes, runHttpFuzz } from "./testing/http-fuzz.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20_240_611);
const REQUESTS = 600;
const ADMIN = "admin-token-for-tests-0123456789";

let dir: string;
let gateway: GatewayServer;
let node: FakeNode;
let apiKey: string;
let accountId: string;
let keyId: string;

const chatBody = { model: "fake-model", messages: [{ role: "user", content: "hi" }], max_tokens: 8 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-fuzz-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      verification: { enabled: false },
      routing: { rampUpDays: 0, heartbeatIntervalMs: 600_000 },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
  });
  const created = gateway.accounts.createAccount({ name: "alice", initialMicro: 1_000_000_000 });
  accountId = created.id;
  const key = gateway.accounts.createApiKey(created.id, "test");
  apiKey = key.key;
  keyId = key.id;
  node = await startFakeNode({ capacity: 64 });
  expect((await node.register(gateway.url)).status).toBe(200);
});

afterAll(async () => {
  await node?.close();
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return check();
};

describe("gateway HTTP fuzz", () => {
  it(`seed ${SEED}: ${REQUESTS} mutated requests, no 5xx, well-formed errors, nothing leaked`, async () => {
    let exited: number | undefined;
    const onExit = (code: number) => {
      exited = code;
    };
    process.once("exit", onExit);
    const instanceId = [...gateway.pool.instances()][0]?.id;
    const report = await runHttpFuzz({
      url: gateway.url,
      seed: SEED,
      requests: REQUESTS,
      concurrency: 8,
      timeoutMs: 1_500,
      target: {
        routes: gatewayFuzzRoutes({
          nodeAddress: node.account.address,
          accountId,
          keyId,
          ...(instanceId ? { instanceId } : {}),
        }),
        tokens: [apiKey, ADMIN],
        jsonBody: chatBody,
        jsonPath: "/v1/chat/completions",
      },
      probe: () => (exited === undefined ? undefined : `process exiting (${exited})`),
    });
    process.off("exit", onExit);
    console.log(
      `gateway fuzz seed ${SEED}:`,
      JSON.stringify({ ...report, problems: report.problems.length }),
    );
    expect(report.problems).toEqual([]);
    expect(report.fiveXX).toBe(0);
    expect(report.byClass["4xx"]).toBeGreaterThan(REQUESTS / 4);

    // Whatever the fuzz set on the key and the account is lifted, then a normal chat goes through.
    for (const kind of ["keys", "accounts"] as const) {
      const id = kind === "keys" ? keyId : accountId;
      const reset = await fetch(`${gateway.url}/v1/gateway/limits/${kind}/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(reset.status).toBeLessThan(500);
      await reset.arrayBuffer();
    }
    const ok = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify(chatBody),
    });
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(((await ok.json()) as { choices: unknown[] }).choices.length).toBe(1);
    expect(await until(() => gateway.holds.heldMicro(accountId) === 0)).toBe(true);
    expect(
      await until(() => [...gateway.pool.instances()].every((instance) => instance.inFlight === 0)),
    ).toBe(true);
    expect([...gateway.pool.instances()].length).toBeGreaterThan(0);
    const health = await fetch(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();
  });
});
