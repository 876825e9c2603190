/**
 * The open-world rule, played by the attacker: anyone may run a node, so a node may give any URL,
 * answer with anything, and never finish. Real gateway, real fake-node HTTP servers on loopback,
 * the official OpenAI client. After each hostile node: nothing registered that should not be, no
 * connection tried where none may go, no hold or lease left behind, the gateway's memory bounded,
 * and the consumer billed at most what was delivered.
 */

import type { LookupAddress } from "node:dns";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type GatewayConfigInput, parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, type FakeNodeOptions, startFakeNode } from "./testing/fake-node.js";

const logger = pino({ level: "silent" });

let dir: string;
let gateway: GatewayServer;
let nodes: FakeNode[] = [];
let others: Server[] = [];
let apiKey: string;
let accountId: string;
/** What the fake resolver answers, per name; every name asked is recorded. */
let dns: Record<string, string[]>;
let asked: string[];

const resolveHost = async (name: string): Promise<LookupAddress[]> => {
  asked.push(name);
  const addresses = dns[name];
  if (addresses === undefined)
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
  return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};

async function startGateway(config: GatewayConfigInput = {}): Promise<void> {
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      prices: { "*": { inputPerMillion: 1000, outputPerMillion: 4000 } },
      verification: { enabled: false },
      ...config,
      routing: { rampUpDays: 0, maxRetries: 0, ...config.routing },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-tests-0123456789",
    logger,
    resolveHost,
  });
  const created = gateway.accounts.createAccount({ name: "alice", initialMicro: 1_000_000_000 });
  accountId = created.id;
  apiKey = gateway.accounts.createApiKey(created.id, "test").key;
}

async function hostileNode(options: FakeNodeOptions, url?: string): Promise<FakeNode> {
  const node = await startFakeNode(options);
  nodes.push(node);
  const response = await node.register(gateway.url, url === undefined ? {} : { url });
  expect(response.status, await response.clone().text()).toBe(200);
  return node;
}

const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
const chat = (extra: Record<string, unknown> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
      ...extra,
    }),
  });

/** Nothing left behind: no credit held for the consumer, no lease on any instance. */
async function expectNothingLeaked(): Promise<void> {
  await gateway.settled();
  expect(gateway.holds.heldMicro(accountId)).toBe(0);
  for (const instance of gateway.pool.instances()) expect(instance.inFlight).toBe(0);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-hostile-"));
  dns = {};
  asked = [];
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(nodes.map((node) => node.close()));
  await Promise.all(others.map((server) => new Promise((resolve) => server.close(resolve))));
  nodes = [];
  others = [];
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the URL a node registers (allowPrivateNodes off, the default)", () => {
  const refused = [
    "http://169.254.169.254",
    "http://169.254.169.254/latest/meta-data/#",
    "http://[fd00:ec2::254]",
    "http://[::ffff:169.254.169.254]",
    "http://[::ffff:a9fe:a9fe]",
    "http://metadata.google.internal",
    "http://metadata",
    "http://127.0.0.1:9",
    "http://2130706433:9",
    "http://0x7f.1:9",
    "http://[::1]:9",
    "http://[::ffff:127.0.0.1]:9",
    "http://localhost:9",
    "http://app.localhost:9",
    "http://0.0.0.0:9",
    "http://10.0.0.5",
    "http://172.16.0.1",
    "http://192.168.1.10",
    "http://100.64.0.1",
    "http://[fe80::1]",
    "http://[fc00::1]",
    "http://printer",
    "http://db.internal",
    "https://10.1.2.3",
    "file:///etc/passwd",
    "ftp://node.example",
    "gopher://node.example:70",
    "http://user:secret@node.example",
    "http://node.example/v1",
    "http://node.example?x=1",
    "http://node.example#",
    "http://rebind.example",
    "http://private.example",
    "http://nxdomain.example",
  ];

  it(`refuses all ${refused.length} internal, metadata, non-http and decorated URLs, before any connection`, async () => {
    await startGateway();
    dns = {
      "node.example": ["93.184.216.34"],
      "rebind.example": ["93.184.216.34", "10.0.0.1"],
      "private.example": ["192.168.0.9"],
    };
    const node = await startFakeNode();
    nodes.push(node);
    const connect = vi.spyOn(Socket.prototype, "connect");
    const answers: { url: string; status: number; code: string | null }[] = [];
    for (const url of refused) {
      const response = await node.register(gateway.url, { url });
      const body = (await response.json()) as { error?: { code: string } };
      answers.push({ url, status: response.status, code: body.error?.code ?? null });
    }
    expect(answers.filter((answer) => answer.status !== 400 || answer.code !== "invalid_node_url")).toEqual(
      [],
    );
    expect(gateway.pool.size).toBe(0);
    // The only connections made were the test's own, to the gateway on loopback.
    const targets = connect.mock.calls.map(([options]) => {
      const given = (Array.isArray(options) ? options[0] : options) as { host?: string; port?: number };
      return given.host ?? "localhost";
    });
    expect(targets.filter((host) => host !== "127.0.0.1" && host !== "localhost")).toEqual([]);
    // Literal addresses and internal names are refused without even a lookup.
    expect([...new Set(asked)].sort()).toEqual(
      ["nxdomain.example", "private.example", "rebind.example"].sort(),
    );
  });

  it("checks the name again at connect time: a name rebound to loopback after registering is never dialled", async () => {
    await startGateway();
    const node = await startFakeNode();
    nodes.push(node);
    const port = new URL(node.url).port;
    dns = { "node.example": ["93.184.216.34"] };
    const registered = await node.register(gateway.url, { url: `http://node.example:${port}` });
    expect(registered.status).toBe(200);
    // Rebound: the same name now points at the gateway's own loopback, where the node happens to listen.
    dns = { "node.example": ["127.0.0.1"] };
    const response = await chat();
    expect(response.status).toBe(502);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("upstream_failed");
    expect(error.message).not.toMatch(/127\.0\.0\.1|refused|loopback|ECONN/i);
    expect(node.served).toHaveLength(0);
    await expectNothingLeaked();
  });
});

describe("hostile nodes (allowPrivateNodes on, as gbt up and tests run)", () => {
  beforeEach(async () => {
    await startGateway({
      allowPrivateNodes: true,
      routing: {
        responseTimeoutMs: 300,
        stallTimeoutMs: 300,
        maxResponseBytes: 1024 * 1024,
        maxEventBytes: 64 * 1024,
      },
    });
  });

  it("still refuses link-local and metadata addresses", async () => {
    const node = await startFakeNode();
    nodes.push(node);
    for (const url of ["http://169.254.169.254", "http://metadata.google.internal", "http://[fe80::1]:80"]) {
      const response = await node.register(gateway.url, { url });
      expect(response.status).toBe(400);
    }
    expect(gateway.pool.size).toBe(0);
  });

  it("never follows a redirect: a 302 is the node's failure, and the Location is never asked", async () => {
    let asked = 0;
    const target = createServer((_req, res) => {
      asked += 1;
      res.end("secret");
    });
    others.push(target);
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const { port } = target.address() as { port: number };
    await hostileNode({ faults: { redirectTo: `http://127.0.0.1:${port}/internal` } });
    const response = await chat();
    expect(response.status).toBe(502);
    expect(response.headers.get("location")).toBeNull();
    expect(await response.text()).not.toContain("secret");
    expect(asked).toBe(0);
    // Counted against the node (its breaker), not passed through as a neutral answer.
    const failures = (await gateway.metrics.upstreamFailures.get()).values;
    expect(failures.find((value) => value.labels.outcome === "failure")?.value).toBe(1);
    await expectNothingLeaked();
  });

  it("speaks https with certificate checks: a node whose https is not TLS fails cleanly (no 500, lease released)", async () => {
    const node = await startFakeNode();
    nodes.push(node);
    const response = await node.register(gateway.url, { url: node.url.replace("http:", "https:") });
    expect(response.status).toBe(200);
    const answer = await chat();
    expect(answer.status).toBe(502);
    expect(node.served).toHaveLength(0);
    await expectNothingLeaked();
  });

  it("tells the consumer nothing about the node's network (a closed port reads as a plain failure)", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    await hostileNode({}, `http://127.0.0.1:${port}`);
    const response = await chat();
    expect(response.status).toBe(502);
    expect(await response.text()).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect/);
    await expectNothingLeaked();
  });

  it("a whole answer that sends headers and then nothing fails at the response deadline", async () => {
    await hostileNode({ faults: { stallAfterHeaders: true } });
    const response = await chat();
    expect(response.status).toBe(502);
    expect(gateway.ledger.usage(accountId, 10)).toHaveLength(0);
    await expectNothingLeaked();
  });

  it("a stream that sends headers and then nothing ends at the stall timeout, billed nothing", async () => {
    await hostileNode({ faults: { stallAfterHeaders: true } });
    const response = await chat({ stream: true });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('"code":"upstream_failed"');
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.completionTokens ?? 0).toBe(0);
    await expectNothingLeaked();
  });

  it("a 1 GiB whole answer is cut at the byte cap: the gateway's memory stays bounded", async () => {
    await hostileNode({ faults: { hugeBody: 1024 * 1024 * 1024 } });
    const before = process.memoryUsage().rss;
    const response = await chat();
    expect(response.status).toBe(502);
    // The cap is 1 MiB here; the rest of the gigabyte is never read.
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    expect(gateway.ledger.usage(accountId, 10)).toHaveLength(0);
    await expectNothingLeaked();
  });

  it("an SSE stream with no terminator is cut at the event cap, not buffered to the end", async () => {
    await hostileNode({ faults: { unterminatedStream: 1024 * 1024 * 1024 } });
    const before = process.memoryUsage().rss;
    const response = await chat({ stream: true });
    const text = await response.text();
    expect(text).toContain('"code":"upstream_failed"');
    // Nothing of the unterminated event reached the consumer.
    expect(text).not.toContain("xxxx");
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    await gateway.settled();
    expect(gateway.ledger.usage(accountId, 1)[0]?.completionTokens ?? 0).toBe(0);
    await expectNothingLeaked();
  });

  it("empty SSE events bill nothing: 50 empty events and 3 real ones bill 3 tokens", async () => {
    await hostileNode({ tokens: 3, faults: { emptyEvents: 50, noReceipt: true } });
    const stream = await client().chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("tok0 tok1 tok2 ");
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.completionTokens).toBe(3);
    await expectNothingLeaked();
  });

  it("inflated usage in a whole answer bills at most the bytes of text delivered", async () => {
    await hostileNode({ tokens: 3, faults: { inflateUsage: 100, noReceipt: true } });
    const answer = await client().chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 1000,
    });
    const text = answer.choices[0]?.message.content ?? "";
    expect(answer.usage?.completion_tokens).toBe(300); // what the node claims, passed through as it is
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    const delivered = Buffer.byteLength(text);
    // One byte of text per token, plus the receipt check's tolerance (10% + 2).
    expect(record?.completionTokens).toBe(delivered + Math.ceil(delivered * 0.1) + 2);
    await expectNothingLeaked();
  });

  it("a node that refuses (400) what its peers answer loses health and is parked; the consumer is then served", async () => {
    // Eight at a time over two nodes of capacity 4: least-loaded routing gives both their share.
    const honest = await hostileNode({ firstTokenDelayMs: 20 });
    const hole = await hostileNode({ faults: { status: 400 } });
    const statuses: number[] = [];
    for (let batch = 0; batch < 15; batch++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => chat()));
      for (const response of answers) {
        statuses.push(response.status);
        await response.arrayBuffer();
      }
    }
    const byId = new Map(gateway.pool.live().map((view) => [view.id, view]));
    expect(byId.get(hole.account.address.toLowerCase())?.breaker).toBe("open");
    expect(byId.get(honest.account.address.toLowerCase())?.breaker).toBe("closed");
    expect(byId.get(honest.account.address.toLowerCase())?.health.failures).toBe(0);
    // Once parked, the black hole gets no more of the traffic.
    expect(statuses.slice(-20).every((status) => status === 200)).toBe(true);
    await expectNothingLeaked();
  });

  it("a consumer's bad input that every node refuses stays neutral: no node loses health", async () => {
    // Eight at a time over two nodes of capacity 4: both see the consumer's requests.
    const nodes = [
      await hostileNode({ firstTokenDelayMs: 20, faults: { status: 400 } }),
      await hostileNode({ firstTokenDelayMs: 20, faults: { status: 400 } }),
    ];
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => chat()));
      expect(answers.map((response) => response.status)).toEqual(Array(8).fill(400));
    }
    for (const view of gateway.pool.live()) {
      expect(view.breaker).toBe("closed");
      expect(view.health.failures).toBe(0);
    }
    expect(nodes.every((node) => node.served.length > 20)).toBe(true);
    await expectNothingLeaked();
  });

  it("a capacity of 4e9 is believed only up to the configured maximum", async () => {
    const node = await startFakeNode();
    nodes.push(node);
    expect((await node.register(gateway.url, { capacity: 4_000_000_000 })).status).toBe(200);
    expect([...gateway.pool.instances()][0]?.declaredCapacity).toBe(256);
  });
});
