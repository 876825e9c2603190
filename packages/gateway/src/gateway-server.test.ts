import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { costMicro } from "./billing/pricing.js";
import { type GatewayConfigInput, parseGatewayConfig } from "./gateway-config.js";
import { consumerAccount, PLATFORM_ACCOUNT, providerAccount, SUSPENSE_ACCOUNT } from "./gateway-database.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, type FakeNodeOptions, startFakeNode } from "./testing/fake-node.js";

const logger = pino({ level: "silent" });
const PRICE = { inputPerMillion: 1000, outputPerMillion: 4000 }; // high enough that every token shows in the ledger

let dir: string;
let gateway: GatewayServer;
let nodes: FakeNode[] = [];
let apiKey: string;
let accountId: string;

async function startGateway(config: GatewayConfigInput = {}): Promise<void> {
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      prices: { "*": PRICE },
      ...config,
      routing: { rampUpDays: 0, ...config.routing },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-tests-0123456789",
    logger,
  });
  const created = gateway.accounts.createAccount({ name: "alice" });
  accountId = created.id;
  apiKey = gateway.accounts.createApiKey(created.id, "test").key;
}

async function addNodes(count: number, options: FakeNodeOptions = {}): Promise<FakeNode[]> {
  const added: FakeNode[] = [];
  for (let i = 0; i < count; i++) {
    const node = await startFakeNode(options);
    const response = await node.register(gateway.url);
    expect(response.status).toBe(200);
    added.push(node);
  }
  nodes.push(...added);
  return added;
}

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string | null; param: string | null } }).error;

const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}`, ...headers },
    body,
  });

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: "fake-model",
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 64,
    ...extra,
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-gateway-"));
});

afterEach(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  nodes = [];
  await gateway?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

describe("consumer API through the official openai client", () => {
  it("serves whole and streamed completions from three nodes and bills each from its receipt", async () => {
    await startGateway();
    await addNodes(3, { tokens: 6 });
    const openai = client();
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["fake-model"]);

    const whole = await openai.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 64,
    });
    expect(whole.choices[0]?.message.content).toBe("tok0 tok1 tok2 tok3 tok4 tok5 ");
    expect(whole.usage?.completion_tokens).toBe(6);

    const stream = await openai.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("tok0 tok1 tok2 tok3 tok4 tok5 ");
    expect(usage?.completion_tokens).toBe(6);

    await gateway.settled();
    const perRequest = costMicro(PRICE, 5, 6);
    expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(5_000_000 - 2 * perRequest);
    const records = gateway.ledger.usage(accountId, 10);
    expect(records).toHaveLength(2);
    for (const record of records) {
      expect(record.receiptStatus).toBe("valid");
      expect(record.gatewaySignature).toMatch(/^0x[0-9a-f]{130}$/);
    }
    expect(gateway.ledger.checkInvariants().ok).toBe(true);
    // The consumer never sees the node's receipt.
    const raw = await (await post("/v1/chat/completions", chatBody({ stream: true }))).text();
    expect(raw).not.toContain("gbt-receipt");
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const wholeResponse = await post("/v1/chat/completions", chatBody());
    expect(wholeResponse.headers.get("x-gbt-receipt")).toBeNull();
    expect(Number(wholeResponse.headers.get("x-gbt-gateway-ms"))).toBeGreaterThanOrEqual(0);
  });

  it("spreads a concurrent burst over equal nodes (least loaded first)", async () => {
    await startGateway();
    const pool = await addNodes(3, { tokens: 4, tokenDelayMs: 20, capacity: 8 });
    const openai = client();
    await Promise.all(
      Array.from({ length: 24 }, () =>
        openai.chat.completions.create({
          model: "fake-model",
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 8,
        }),
      ),
    );
    const counts = pool.map((node) => node.served.length);
    // 24 requests that overlap in time over 3 nodes of 8 slots: least-loaded keeps each at 8 ± 2.
    expect(counts.reduce((a, b) => a + b, 0)).toBe(24);
    for (const count of counts) expect(Math.abs(count - 8)).toBeLessThanOrEqual(2);
  });
});

describe("failures", () => {
  it("moves a request that failed before its first byte to another node, invisibly", async () => {
    await startGateway();
    const [bad] = await addNodes(1, { faults: { dropBeforeHeaders: true }, capacity: 100 });
    await addNodes(1, { capacity: 1 });
    const openai = client();
    for (let i = 0; i < 3; i++) {
      const answer = await openai.chat.completions.create({
        model: "fake-model",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 16,
      });
      expect(answer.choices[0]?.message.content).toContain("tok0");
    }
    expect(bad?.served.length).toBe(3);
    const view = gateway.pool.live().find((instance) => instance.id === bad?.account.address.toLowerCase());
    expect(view?.breaker).toBe("open"); // 3 failures within 60 s park it
    // Parked now: the next request goes straight to the healthy node.
    await openai.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
    });
    expect(bad?.served.length).toBe(3);
  });

  it("treats a node's 429 as a cooldown and a consumer's 4xx as neutral", async () => {
    await startGateway();
    const [busy] = await addNodes(1, { faults: { status: 429 }, capacity: 100 });
    await addNodes(1, { capacity: 1 });
    const ok = await post("/v1/chat/completions", chatBody());
    expect(ok.status).toBe(200);
    const view = gateway.pool.live().find((instance) => instance.id === busy?.account.address.toLowerCase());
    expect(view?.cooldownUntil).not.toBeNull();
    expect(view?.health.failures).toBe(0);
  });

  it("ends a stream that dies mid-way with an error event and bills only the delivered tokens", async () => {
    await startGateway();
    await addNodes(1, { tokens: 10, tokenDelayMs: 10, faults: { dieAfterTokens: 4 } });
    const response = await post("/v1/chat/completions", chatBody({ stream: true }));
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('"code":"upstream_failed"');
    expect(text).not.toContain("data: [DONE]");
    expect(text.match(/"content":"tok/g)).toHaveLength(4);
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.completionTokens).toBe(4);
    expect(record?.promptTokens).toBe(0);
    expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(5_000_000 - costMicro(PRICE, 0, 4));
  });

  it("cuts a stalled stream after the stall timeout", async () => {
    await startGateway({ routing: { stallTimeoutMs: 300 } });
    await addNodes(1, { tokens: 10, faults: { stallAfterTokens: 2 } });
    const response = await post("/v1/chat/completions", chatBody({ stream: true }));
    const text = await response.text();
    expect(text).toContain("upstream_failed");
    expect(text.match(/"content":"tok/g)).toHaveLength(2);
  });
});

describe("careless consumers and cut bodies (open network)", () => {
  it("never counts a consumer's cancellation against the node: 100 cancelled during prefill leave it closed and eligible", async () => {
    await startGateway();
    // One node whose answers take 800 ms, as a prefill does: the consumer presses stop first.
    const [slow] = await addNodes(1, { firstTokenDelayMs: 800, capacity: 4 });
    for (let batch = 0; batch < 25; batch++) {
      const controllers = [0, 1, 2, 3].map(() => new AbortController());
      const requests = controllers.map((controller, i) =>
        fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
          body: chatBody({ stream: (batch + i) % 2 === 0 }),
          signal: controller.signal,
        }).catch((error: unknown) => error),
      );
      // All four are in the node's prefill when their consumers leave.
      await expect.poll(() => slow?.served.length).toBe(4 * (batch + 1));
      for (const controller of controllers) controller.abort();
      for (const request of requests) expect(await request).toBeInstanceOf(Error);
      await expect.poll(() => gateway.pool.live()[0]?.inFlight).toBe(0);
    }
    expect(slow?.served).toHaveLength(100);
    await expect.poll(() => gateway.pool.live()[0]?.inFlight, { timeout: 5000 }).toBe(0);
    const view = gateway.pool.live().find((instance) => instance.id === slow?.account.address.toLowerCase());
    expect(view?.breaker).toBe("closed");
    expect(view?.health.failures).toBe(0);
    // Still eligible: the next request is served, and no credit is left held.
    expect((await post("/v1/chat/completions", chatBody())).status).toBe(200);
    await gateway.settled();
    expect(gateway.holds.heldMicro(accountId)).toBe(0);
  });

  it("panic mode: a model whose only node is parked is still served, and /metrics counts it", async () => {
    await startGateway({ routing: { maxRetries: 0 } });
    const [flaky] = await addNodes(1, { faults: { status: 500 } });
    for (let i = 0; i < 3; i++) expect((await post("/v1/chat/completions", chatBody())).status).toBe(502);
    expect(gateway.pool.live()[0]?.breaker).toBe("open");
    if (flaky) flaky.faults.status = undefined; // the node recovers before its breaker lets a probe in
    expect((await post("/v1/chat/completions", chatBody())).status).toBe(200);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/^gbt_gateway_panic_routes_total 1$/m);
    // Panic mode is a config switch: off, the parked node is left alone.
    await gateway.close(1000);
    await startGateway({ routing: { maxRetries: 0, panicMode: false } });
    await flaky?.register(gateway.url);
    if (flaky) flaky.faults.status = 500;
    for (let i = 0; i < 3; i++) await post("/v1/chat/completions", chatBody());
    if (flaky) flaky.faults.status = undefined;
    expect((await post("/v1/chat/completions", chatBody())).status).toBe(503);
  });

  it("believes a declared capacity only up to the node's signed benchmark and the gateway's maximum", async () => {
    await startGateway({ routing: { maxCapacity: 16 } });
    const liar = await startFakeNode();
    nodes.push(liar);
    expect((await liar.register(gateway.url, { capacity: 4_000_000_000 })).status).toBe(200);
    const benchmarked = await startFakeNode({ capacity: 2, benchmarkTokPerSec: 40 });
    nodes.push(benchmarked);
    expect((await benchmarked.register(gateway.url, { capacity: 1_000 })).status).toBe(200);
    const capacityOf = (node: FakeNode) =>
      gateway.pool.live().find((instance) => instance.id === node.account.address.toLowerCase())
        ?.declaredCapacity;
    expect(capacityOf(liar)).toBe(16);
    expect(capacityOf(benchmarked)).toBe(2); // its benchmark's eligible capacity
    // A heartbeat cannot raise it past the bound either.
    expect((await liar.heartbeat(gateway.url, { capacity: 4_000_000_000 })).status).toBe(200);
    expect(capacityOf(liar)).toBe(16);
  });

  it("releases the hold and the lease when a node cuts the body of a 4xx answer", async () => {
    await startGateway();
    const [cutter] = await addNodes(1, { faults: { status: 400, cutBody: true }, capacity: 2 });
    for (let i = 0; i < 3; i++) {
      const answer = await post("/v1/chat/completions", chatBody())
        .then(async (response) => ({
          status: response.status,
          body: await response.text().catch(() => "cut"),
        }))
        .catch(() => ({ status: 0, body: "cut" }));
      expect([0, 400]).toContain(answer.status);
    }
    await expect.poll(() => gateway.holds.heldMicro(accountId), { timeout: 5000 }).toBe(0);
    const view = gateway.pool
      .live()
      .find((instance) => instance.id === cutter?.account.address.toLowerCase());
    expect(view?.inFlight).toBe(0);
    // Held credits would have frozen the account: it still has its whole balance to spend.
    expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(5_000_000);
  });
});

describe("a full pool", () => {
  it("queues a request until a slot frees up, and answers 503 no_capacity past the queue timeout", async () => {
    await startGateway();
    await addNodes(1, { tokens: 4, tokenDelayMs: 15, capacity: 1 });
    const statuses = await Promise.all(
      Array.from({ length: 4 }, () => post("/v1/chat/completions", chatBody()).then((r) => r.status)),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    await gateway.close(1000);
    for (const node of nodes) await node.close();
    nodes = [];
    rmSync(dir, { recursive: true, force: true });
    dir = mkdtempSync(join(tmpdir(), "gbt-gateway-"));
    await startGateway({ routing: { queueTimeoutMs: 0 } });
    await addNodes(1, { tokens: 4, tokenDelayMs: 15, capacity: 1 });
    const refused = await Promise.all(
      Array.from({ length: 3 }, () => post("/v1/chat/completions", chatBody())),
    );
    const codes = await Promise.all(
      refused.map(async (r) => (r.status === 200 ? "ok" : (await errorOf(r)).code)),
    );
    expect(codes.filter((c) => c === "ok")).toHaveLength(1);
    expect(codes.filter((c) => c === "no_capacity")).toHaveLength(2);
    expect(refused.find((r) => r.status === 503)?.headers.get("retry-after")).toBe("1");
  });
});

describe("hostile input", () => {
  it("answers bad keys, bad JSON, unknown models and empty wallets with OpenAI error bodies", async () => {
    await startGateway();
    await addNodes(1);
    const noKey = await fetch(`${gateway.url}/v1/chat/completions`, { method: "POST", body: chatBody() });
    expect(noKey.status).toBe(401);
    expect((await errorOf(noKey)).code).toBe("invalid_api_key");
    const wrongKey = await post("/v1/chat/completions", chatBody(), { authorization: "Bearer gbt_gk_nope" });
    expect(wrongKey.status).toBe(401);
    const badJson = await post("/v1/chat/completions", "{not json");
    expect(badJson.status).toBe(400);
    expect((await errorOf(badJson)).code).toBe("invalid_json");
    const noMessages = await post("/v1/chat/completions", JSON.stringify({ model: "fake-model" }));
    expect((await errorOf(noMessages)).param).toBe("messages");
    const unknown = await post("/v1/chat/completions", chatBody({ model: "nope" }));
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe("model_not_found");
    // 5.00 credits cannot hold a million output tokens at 4000 credits per million.
    const tooMuch = await post("/v1/chat/completions", chatBody({ max_tokens: 1_000_000 }));
    expect(tooMuch.status).toBe(402);
    expect((await errorOf(tooMuch)).code).toBe("insufficient_credits");
    await gateway.settled();
    expect(gateway.ledger.usage(accountId, 10)).toHaveLength(0);
    expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(5_000_000);
  });

  it("refuses forged heartbeats and replayed registrations", async () => {
    await startGateway();
    const [node] = await addNodes(1);
    if (node === undefined) throw new Error("no node");
    // A heartbeat signed by another key but claiming nothing of this node's: unknown instance.
    const stranger = privateKeyToAccount(generatePrivateKey());
    const forged = await node.heartbeat(gateway.url, { signer: stranger });
    expect(forged.status).toBe(404);
    // A heartbeat whose signature does not match its contents.
    const honest = await node.heartbeat(gateway.url);
    expect(honest.status).toBe(200);
    const replay = await fetch(`${gateway.url}/v1/gateway/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(node.lastRegistration),
    });
    expect(replay.status).toBe(409);
    expect((await errorOf(replay)).code).toBe("replayed");
    const tampered = {
      ...node.lastRegistration,
      message: { ...node.lastRegistration?.message, url: "http://127.0.0.1:1" },
    };
    const forgedRegistration = await fetch(`${gateway.url}/v1/gateway/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(tampered),
    });
    expect(forgedRegistration.status).toBe(401);
    expect((await errorOf(forgedRegistration)).code).toBe("signature_invalid");
    const old = await node.heartbeat(gateway.url, { seq: 1 });
    expect(old.status).toBe(409);
  });

  it("does not pay a node whose receipt inflates its tokens", async () => {
    await startGateway();
    const [node] = await addNodes(1, { tokens: 6, faults: { inflateReceipt: 3 } });
    expect((await post("/v1/chat/completions", chatBody({ stream: true }))).status).toBe(200);
    await (await post("/v1/chat/completions", chatBody())).text();
    await gateway.settled();
    const records = gateway.ledger.usage(accountId, 10);
    expect(records.map((r) => r.receiptStatus)).toEqual(["mismatch", "mismatch"]);
    for (const record of records) expect(record.completionTokens).toBe(6); // billed on what was relayed
    expect(gateway.ledger.balanceMicro(providerAccount(node?.account.address ?? ""))).toBe(0);
    expect(gateway.ledger.balanceMicro(SUSPENSE_ACCOUNT)).toBeGreaterThan(0);
  });

  it("does not pay for a receipt signed by another key", async () => {
    await startGateway();
    const [node] = await addNodes(1, {
      faults: { receiptSigner: privateKeyToAccount(generatePrivateKey()) },
    });
    await (await post("/v1/chat/completions", chatBody({ stream: true }))).text();
    await gateway.settled();
    expect(gateway.ledger.usage(accountId, 1)[0]?.receiptStatus).toBe("invalid");
    expect(gateway.ledger.balanceMicro(providerAccount(node?.account.address ?? ""))).toBe(0);
  });

  it("keeps admin routes behind the admin token", async () => {
    await startGateway();
    const denied = await fetch(`${gateway.url}/v1/gateway/nodes`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${gateway.url}/v1/gateway/nodes`, {
      headers: { authorization: "Bearer admin-token-for-tests-0123456789" },
    });
    expect(allowed.status).toBe(200);
  });
});

describe("ledger invariants after a randomized run", () => {
  it("balances, never settles a request twice, and never takes a consumer below zero", async () => {
    await startGateway();
    await addNodes(2, { tokens: 5, capacity: 4 });
    const [flaky] = await addNodes(1, { tokens: 5, capacity: 4, faults: {} });
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const keys = [apiKey];
    for (let i = 0; i < 3; i++) {
      const account = gateway.accounts.createAccount({ name: `user${i}` });
      keys.push(gateway.accounts.createApiKey(account.id, "k").key);
    }
    const requests: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      if (flaky) flaky.faults.dieAfterTokens = random() < 0.2 ? 2 : undefined;
      const key = keys[Math.floor(random() * keys.length)] as string;
      const roll = random();
      const body =
        roll < 0.1
          ? "{broken"
          : chatBody({
              stream: roll < 0.6,
              max_tokens: roll < 0.15 ? 2_000_000 : 1 + Math.floor(random() * 16),
            });
      requests.push(
        post("/v1/chat/completions", body, { authorization: `Bearer ${key}` }).then((r) => r.text()),
      );
      if (random() < 0.3) await Promise.all(requests.splice(0));
    }
    await Promise.all(requests);
    await gateway.settled();
    const report = gateway.ledger.checkInvariants();
    expect(report).toMatchObject({
      ok: true,
      totalMicro: 0,
      unbalancedTransactions: [],
      negativeConsumers: [],
      duplicateRequestIds: [],
    });
    const usage = gateway.db
      .prepare(
        "SELECT SUM(debit) d, SUM(provider_credit) p, SUM(platform_credit) f, COUNT(*) n FROM usage_records",
      )
      .get() as { d: number; p: number; f: number; n: number };
    expect(usage.n).toBeGreaterThan(20);
    expect(usage.d).toBe(usage.p + usage.f);
    expect(gateway.ledger.balanceMicro(PLATFORM_ACCOUNT)).toBeGreaterThan(0);
  });
});
