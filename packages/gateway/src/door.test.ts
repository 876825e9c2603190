/**
 * Limits at the door, played by a careless or hostile consumer: per-key and per-account requests,
 * tokens and concurrency per minute, an account's spend budget, a per-address limit on the routes
 * that need no key, and socket limits that keep a slowloris and a pile of idle connections from
 * stopping anyone else. The clock is injected: a "minute" passes in a line.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type GatewayConfigInput, parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, type FakeNodeOptions, startFakeNode } from "./testing/fake-node.js";

const ADMIN = "admin-token-for-tests-0123456789";
/** 10 000 idle connections, or as many as this process's file limit leaves room for (both ends are in it). */
const IDLE = Math.min(10_000, openFileLimit() - 2_000);

function openFileLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((text) => text.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : 4096;
  } catch {
    return 4096;
  }
}
let dir: string;
let gateway: GatewayServer;
let node: FakeNode;
let clock: number;
let apiKey: string;
let accountId: string;
let keyId: string;

async function start(config: GatewayConfigInput = {}, nodeOptions: FakeNodeOptions = {}): Promise<void> {
  // The gateway's clock starts at the real time (the node signs its registration with it), then moves only when told.
  clock = Date.now();
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      verification: { enabled: false },
      ...config,
      routing: { rampUpDays: 0, heartbeatIntervalMs: 600_000, ...config.routing },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    now: () => clock,
  });
  const created = gateway.accounts.createAccount({ name: "alice", initialMicro: 1_000_000_000 });
  accountId = created.id;
  const key = gateway.accounts.createApiKey(created.id, "test");
  apiKey = key.key;
  keyId = key.id;
  node = await startFakeNode({ capacity: 64, ...nodeOptions });
  expect((await node.register(gateway.url)).status).toBe(200);
}

const chat = (extra: Record<string, unknown> = {}, key = apiKey) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      ...extra,
    }),
  });

const setLimits = async (kind: "keys" | "accounts", id: string, limits: Record<string, unknown>) => {
  const response = await fetch(`${gateway.url}/v1/gateway/limits/${kind}/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify(limits),
  });
  expect(response.status, await response.clone().text()).toBe(200);
};

const codeOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string } }).error.code;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-door-"));
});

afterEach(async () => {
  await node?.close();
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("per-key and per-account limits", () => {
  it("a key at 60 RPM gets exactly 60 answers in any minute, then 429s with OpenAI's headers", async () => {
    await start();
    await setLimits("keys", keyId, { requestsPerMinute: 60 });
    const statuses: number[] = [];
    const remaining: string[] = [];
    for (let i = 0; i < 30; i++) {
      const response = await chat();
      statuses.push(response.status);
      remaining.push(response.headers.get("x-ratelimit-remaining-requests") ?? "none");
      expect(response.headers.get("x-ratelimit-limit-requests")).toBe("60");
      await response.arrayBuffer();
    }
    clock += 50_000; // 50 s later, the second half of the minute
    for (let i = 0; i < 35; i++) {
      const response = await chat();
      statuses.push(response.status);
      if (response.status === 429) {
        expect(response.headers.get("retry-after")).toBe("10"); // the first 30 leave the window at 60 s
        expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("0");
        expect(response.headers.get("x-ratelimit-reset-requests")).toBe("10s");
        expect(await codeOf(response)).toBe("rate_limit_exceeded");
      } else {
        remaining.push(response.headers.get("x-ratelimit-remaining-requests") ?? "none");
        await response.arrayBuffer();
      }
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(60);
    expect(statuses.filter((status) => status === 429)).toHaveLength(5);
    expect(remaining.slice(0, 3)).toEqual(["59", "58", "57"]);
    expect(remaining.at(-1)).toBe("0");
    // At 60 s the first 30 have left the window (30 free), not the whole minute's 60.
    clock += 10_001;
    const again: number[] = [];
    for (let i = 0; i < 31; i++) {
      const response = await chat();
      again.push(response.status);
      await response.arrayBuffer();
    }
    expect(again.filter((status) => status === 200)).toHaveLength(30);
    expect(again.at(-1)).toBe(429);
    // Refused requests were not billed.
    await gateway.settled();
    expect(gateway.ledger.usage(accountId, 1000)).toHaveLength(90);
  });

  it("tokens per minute count the prompt's bytes / 4 plus max_tokens, per account across its keys", async () => {
    await start({ limits: { accounts: {} } });
    const second = gateway.accounts.createApiKey(accountId, "second").key;
    await setLimits("accounts", accountId, { tokensPerMinute: 1000 });
    const first = await chat({ max_tokens: 400 });
    expect(first.status).toBe(200);
    const used = 1000 - Number(first.headers.get("x-ratelimit-remaining-tokens"));
    expect(used).toBeGreaterThan(400);
    expect(used).toBeLessThan(450);
    expect((await chat({ max_tokens: 400 }, second)).status).toBe(200);
    expect((await chat({ max_tokens: 400 })).status).toBe(200); // 850 < 1000: admitted
    const over = await chat({ max_tokens: 1 }, second);
    expect(over.status).toBe(429);
    expect(over.headers.get("x-ratelimit-remaining-tokens")).toBe("0");
    clock += 61_000;
    expect((await chat({ max_tokens: 1 })).status).toBe(200);
  });

  it("concurrent requests: the third at once is refused, and every slot comes back", async () => {
    await start({}, { firstTokenDelayMs: 300 });
    await setLimits("accounts", accountId, { concurrentRequests: 2 });
    const answers = await Promise.all([
      chat(),
      chat(),
      new Promise((r) => setTimeout(r, 50)).then(() => chat()),
    ]);
    expect(answers.map((response) => response.status).sort()).toEqual([200, 200, 429]);
    await Promise.all(answers.map((response) => response.arrayBuffer()));
    // A cancelled one frees its slot too.
    const aborted = new AbortController();
    const cancelled = fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] }),
      signal: aborted.signal,
    }).catch(() => null);
    await expect.poll(() => node.inFlight()).toBe(1);
    aborted.abort();
    await cancelled;
    await expect.poll(() => node.inFlight()).toBe(0);
    const after = await Promise.all([chat(), chat()]);
    expect(after.map((response) => response.status)).toEqual([200, 200]);
  });

  it("an account's daily budget counts what it spent and what it holds", async () => {
    await start({ prices: { "*": { inputPerMillion: 1, outputPerMillion: 1 } } });
    // One micro-credit a token: each request holds (body bytes + 8) and spends its real usage (5 + 8).
    await setLimits("accounts", accountId, { budgetMicro: 400, budgetPeriod: "day" });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const response = await chat();
      statuses.push(response.status);
      if (response.status === 429) {
        expect(await codeOf(response)).toBe("budget_exceeded");
        break;
      }
      await response.arrayBuffer();
      await gateway.settled();
      clock += 1001; // the spend is re-read at most once a second
    }
    expect(statuses.at(-1)).toBe(429);
    await gateway.settled();
    const spent = gateway.ledger.usage(accountId, 100).reduce((sum, record) => sum + record.debitMicro, 0);
    expect(spent).toBeLessThanOrEqual(400);
    expect(spent).toBeGreaterThan(300);
  });

  it("limits survive a restart of the gateway (kept in gateway.db)", async () => {
    await start();
    await setLimits("keys", keyId, { requestsPerMinute: 1 });
    await node.close();
    await gateway.close();
    gateway = await startGatewayServer({
      config: parseGatewayConfig({ port: 0, allowPrivateNodes: true, verification: { enabled: false } }),
      dataDir: dir,
      account: privateKeyToAccount(generatePrivateKey()),
      adminToken: ADMIN,
      logger: pino({ level: "silent" }),
      now: () => clock,
    });
    const listed = (await (
      await fetch(`${gateway.url}/v1/gateway/limits`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { overrides: { kind: string; id: string; limits: { requestsPerMinute?: number } }[] };
    expect(listed.overrides).toEqual([{ kind: "key", id: keyId, limits: { requestsPerMinute: 1 } }]);
    node = await startFakeNode();
    expect((await node.register(gateway.url)).status).toBe(200);
    expect((await chat()).status).toBe(200);
    expect((await chat()).status).toBe(429);
  });
});

describe("the routes that need no key, and the sockets", () => {
  it("limits registrations and heartbeats per address before any signature work", async () => {
    await start({ server: { unauthenticatedPerIpPerMinute: 5 } });
    const statuses: number[] = [];
    // One registration was spent in start(); the others are garbage that would cost a signature check.
    for (let i = 0; i < 6; i++) {
      const response = await fetch(`${gateway.url}/v1/gateway/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      statuses.push(response.status);
      if (response.status === 429) expect(response.headers.get("retry-after")).not.toBeNull();
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([400, 400, 400, 400, 429, 429]);
    // Keyed consumer traffic is not counted against the address.
    expect((await chat()).status).toBe(200);
  });

  it(`a slowloris and ${IDLE} idle connections from one address do not stop anyone else`, async () => {
    await start({ server: { headersTimeoutMs: 500, idleTimeoutMs: 500, maxConnectionsPerIp: 200 } });
    const port = Number(new URL(gateway.url).port);
    const sockets: Socket[] = [];
    const closed: number[] = [];
    const open = (slow: boolean) =>
      new Promise<void>((resolve) => {
        const socket = connect({ port, host: "127.0.0.1", localAddress: "127.0.0.1" }, () => {
          if (slow) socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
          resolve();
        });
        socket.on("error", () => resolve());
        socket.on("close", () => closed.push(sockets.indexOf(socket)));
        sockets.push(socket);
      });
    // 150 idle sockets, 50 slowloris ones dribbling a header line every 100 ms, the rest over the per-address cap.
    for (let i = 0; i < IDLE; i++) await open(i >= 150 && i < 200);
    const dribble = setInterval(() => {
      for (const socket of sockets.slice(150, 200)) if (!socket.destroyed) socket.write("x-a: b\r\n");
    }, 100);
    try {
      // Everyone else (another address) is served meanwhile.
      const agent = new Agent({ localAddress: "127.0.0.2" } as never);
      const served = await new Promise<number>((resolve, reject) => {
        const req = request(
          `${gateway.url}/v1/chat/completions`,
          {
            method: "POST",
            agent,
            headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: "hi" }] }));
      });
      expect(served).toBe(200);
      agent.destroy();
      // The 100 over the cap were closed at once; the idle and slowloris ones within the timeouts.
      await expect
        .poll(() => sockets.filter((socket) => socket.destroyed || socket.closed).length, { timeout: 20_000 })
        .toBe(IDLE);
    } finally {
      clearInterval(dribble);
      for (const socket of sockets) socket.destroy();
    }
  });
});
