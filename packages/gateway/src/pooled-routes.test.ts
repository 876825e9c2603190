import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModelCapabilitiesDetails } from "@gbt/protocol";
import OpenAI from "openai";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { costMicro } from "./billing/pricing.js";
import { parseGatewayConfig } from "./gateway-config.js";
import { consumerAccount } from "./gateway-database.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";
import { type FakeNode, type FakeNodeOptions, startFakeNode } from "./testing/fake-node.js";

const logger = pino({ level: "silent" });
const PRICE = { inputPerMillion: 1000, outputPerMillion: 4000 };
const GRANT = 5_000_000;

const caps = (overrides: Partial<ModelCapabilitiesDetails> = {}): ModelCapabilitiesDetails => ({
  chat: true,
  tools: false,
  jsonSchema: false,
  embeddings: false,
  vision: false,
  logprobs: false,
  completions: false,
  ...overrides,
});

let dir: string;
let gateway: GatewayServer;
let nodes: FakeNode[] = [];
let apiKey: string;
let accountId: string;

async function startGateway(maxBodyBytes?: number): Promise<void> {
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      prices: { "*": PRICE },
      routing: { rampUpDays: 0 },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-tests-0123456789",
    logger,
    ...(maxBodyBytes !== undefined ? { maxBodyBytes } : {}),
  });
  const created = gateway.accounts.createAccount({ name: "alice" });
  accountId = created.id;
  apiKey = gateway.accounts.createApiKey(created.id, "test").key;
}

async function addNode(options: FakeNodeOptions = {}): Promise<FakeNode> {
  const node = await startFakeNode({ capacity: 16, ...options });
  expect((await node.register(gateway.url)).status).toBe(200);
  nodes.push(node);
  return node;
}

const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string | null; param: string | null; message: string } })
    .error;

const messages = [{ role: "user", content: "hi" }];
const weatherTool = {
  type: "function",
  function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const jsonSchemaFormat = {
  type: "json_schema",
  json_schema: { name: "answer", schema: { type: "object", properties: { ok: { type: "boolean" } } } },
};

/** Nothing was billed or held: the account has its grant, no usage, no hold. */
async function expectNothingBilled(): Promise<void> {
  await gateway.settled();
  expect(gateway.ledger.usage(accountId, 10)).toHaveLength(0);
  expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(GRANT);
  expect(gateway.holds.heldMicro(accountId)).toBe(0);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-pooled-routes-"));
});

afterEach(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  nodes = [];
  await gateway?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

describe("routing by model capabilities", () => {
  it("sends tools only to a node with tools, json_schema only to one with jsonSchema, and 400s what none can do", async () => {
    await startGateway();
    const plain = await addNode(); // an old registration: chat only
    const tools = await addNode({ capabilities: caps({ tools: true, contextLength: 4096 }) });
    const structured = await addNode({ capabilities: caps({ jsonSchema: true, contextLength: 8192 }) });

    for (let i = 0; i < 6; i++) {
      const answer = await post("/v1/chat/completions", {
        model: "fake-model",
        messages,
        max_tokens: 4,
        tools: [weatherTool],
        stream: i % 2 === 0,
      });
      expect(answer.status).toBe(200);
      await answer.text();
    }
    expect(tools.served).toHaveLength(6);
    for (const request of tools.served) expect(request.body.tools).toBeDefined();
    expect(plain.served.filter((r) => r.body.tools !== undefined)).toHaveLength(0);
    expect(structured.served.filter((r) => r.body.tools !== undefined)).toHaveLength(0);

    for (let i = 0; i < 4; i++) {
      const answer = await post("/v1/chat/completions", {
        model: "fake-model",
        messages,
        max_tokens: 4,
        response_format: jsonSchemaFormat,
      });
      expect(answer.status).toBe(200);
    }
    expect(structured.served.filter((r) => r.body.response_format !== undefined)).toHaveLength(4);
    expect(
      [...plain.served, ...tools.served].filter((r) => r.body.response_format !== undefined),
    ).toHaveLength(0);

    // Tools with tool_choice "none" need nothing: any node may take them.
    const none = await post("/v1/chat/completions", {
      model: "fake-model",
      messages,
      max_tokens: 4,
      tools: [weatherTool],
      tool_choice: "none",
    });
    expect(none.status).toBe(200);

    await gateway.settled();
    const before = gateway.ledger.balanceMicro(consumerAccount(accountId));
    const servedBefore = plain.served.length + tools.served.length + structured.served.length;
    // Images: no node has vision.
    const vision = await post("/v1/chat/completions", {
      model: "fake-model",
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] },
      ],
      max_tokens: 4,
    });
    expect(vision.status).toBe(400);
    const error = await errorOf(vision);
    expect(error.code).toBe("model_not_capable");
    expect(error.message).toContain("vision");
    expect(error.message).toContain("fake-model");
    // Tools and a JSON schema together: each exists, never on one node.
    const both = await post("/v1/chat/completions", {
      model: "fake-model",
      messages,
      max_tokens: 4,
      tools: [weatherTool],
      response_format: jsonSchemaFormat,
    });
    expect(both.status).toBe(400);
    expect((await errorOf(both)).code).toBe("model_not_capable");
    // A model nobody serves is still 404.
    const unknown = await post("/v1/chat/completions", {
      model: "nope",
      messages,
      max_tokens: 4,
      tools: [weatherTool],
    });
    expect(unknown.status).toBe(404);
    expect(plain.served.length + tools.served.length + structured.served.length).toBe(servedBefore);
    await gateway.settled();
    expect(gateway.ledger.balanceMicro(consumerAccount(accountId))).toBe(before);
    expect(gateway.holds.heldMicro(accountId)).toBe(0);
  });

  it("lists each model with supported_parameters, capabilities and context_length from its live nodes", async () => {
    await startGateway();
    await addNode({ capabilities: caps({ tools: true, contextLength: 4096 }) });
    await addNode({ capabilities: caps({ jsonSchema: true, logprobs: true, contextLength: 8192 }) });
    await addNode({
      models: ["embedder"],
      capabilities: caps({ chat: false, embeddings: true, embeddingDimensions: 3, contextLength: 512 }),
    });
    await addNode({ models: ["old-model"] });
    const response = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(response.status).toBe(200);
    const list = (await response.json()) as {
      data: {
        id: string;
        supported_parameters: string[];
        capabilities: Record<string, unknown>;
        context_length: number | null;
      }[];
    };
    const byId = new Map(list.data.map((model) => [model.id, model]));
    const fake = byId.get("fake-model");
    expect(fake?.supported_parameters).toEqual([
      "max_tokens",
      "temperature",
      "top_p",
      "stop",
      "seed",
      "presence_penalty",
      "frequency_penalty",
      "tools",
      "tool_choice",
      "response_format",
      "structured_outputs",
      "logprobs",
      "top_logprobs",
    ]);
    expect(fake?.capabilities).toMatchObject({
      chat: true,
      tools: true,
      jsonSchema: true,
      logprobs: true,
      vision: false,
    });
    expect(fake?.context_length).toBe(8192);
    expect(byId.get("embedder")?.supported_parameters).toEqual([]);
    expect(byId.get("embedder")?.capabilities).toMatchObject({
      chat: false,
      embeddings: true,
      embeddingDimensions: 3,
    });
    expect(byId.get("old-model")?.capabilities).toMatchObject({ chat: true, tools: false });
    expect(byId.get("old-model")?.context_length).toBeNull();
    // The typed client parses the same answer.
    const models = await client().models.list();
    expect(models.data.map((model) => model.id).sort()).toEqual(["embedder", "fake-model", "old-model"]);
  });
});

describe("x-request-id", () => {
  it("is the gateway's own id on every answer (the receipt's on pooled ones), and a client's id comes back", async () => {
    await startGateway();
    const node = await addNode({ tokens: 3 });
    const answer = await post(
      "/v1/chat/completions",
      { model: "fake-model", messages, max_tokens: 4 },
      {
        "x-client-request-id": "client-42",
      },
    );
    expect(answer.status).toBe(200);
    const id = answer.headers.get("x-request-id");
    expect(id).toMatch(/^gw-/);
    expect(answer.headers.get("x-client-request-id")).toBe("client-42");
    expect(node.served[0]?.requestId).toBe(id);
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.requestId).toBe(id);
    expect(record?.receiptStatus).toBe("valid");

    const stream = await post("/v1/completions", {
      model: "fake-model",
      prompt: "hi",
      max_tokens: 4,
      stream: true,
    });
    expect(stream.headers.get("x-request-id")).toMatch(/^gw-/);
    await stream.text();

    // Errors of the hot path, before and after the key check, and the Hono routes.
    const unauthorized = await fetch(`${gateway.url}/v1/embeddings`, {
      method: "POST",
      headers: { "x-client-request-id": "c-1" },
      body: "{}",
    });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("x-request-id")).toMatch(/^gw-/);
    expect(unauthorized.headers.get("x-client-request-id")).toBe("c-1");
    const invalid = await post("/v1/chat/completions", "{", { "x-client-request-id": "c-2" });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get("x-request-id")).toMatch(/^gw-/);
    expect(invalid.headers.get("x-client-request-id")).toBe("c-2");
    const models = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${apiKey}`, "x-client-request-id": "c-3" },
    });
    expect(models.headers.get("x-request-id")).toMatch(/^gw-/);
    expect(models.headers.get("x-client-request-id")).toBe("c-3");
    const missing = await fetch(`${gateway.url}/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toMatch(/^gw-/);
    const ids = new Set([
      id,
      ...[unauthorized, invalid, models, missing].map((r) => r.headers.get("x-request-id")),
    ]);
    expect(ids.size).toBe(5);
  });
});

describe("embeddings", () => {
  it("go only to nodes with embeddings and bill input tokens only (completion 0)", async () => {
    await startGateway();
    const chatOnly = await addNode({ models: ["embedder"] });
    const embedder = await addNode({
      models: ["embedder"],
      capabilities: caps({ chat: false, embeddings: true, embeddingDimensions: 3 }),
    });
    const openai = client();
    const result = await openai.embeddings.create({ model: "embedder", input: ["one", "two"] });
    expect(result.data).toHaveLength(2);
    expect(result.data[1]?.embedding).toEqual([0.25, -0.5, 0.75]);
    expect(result.usage.prompt_tokens).toBe(6);
    const single = await openai.embeddings.create({
      model: "embedder",
      input: "one",
      encoding_format: "float",
    });
    expect(single.data).toHaveLength(1);
    expect(embedder.served).toHaveLength(2);
    expect(chatOnly.served).toHaveLength(0);
    // A chat request to the embedding-only node's model goes to the chat node only.
    const chat = await post("/v1/chat/completions", { model: "embedder", messages, max_tokens: 2 });
    expect(chat.status).toBe(200);
    expect(chatOnly.served).toHaveLength(1);
    await gateway.settled();
    const records = gateway.ledger
      .usage(accountId, 10)
      .filter((r) => r.node.toLowerCase() === embedder.account.address.toLowerCase());
    expect(records).toHaveLength(2);
    for (const record of records) {
      expect(record.completionTokens).toBe(0);
      expect(record.receiptStatus).toBe("valid");
      expect(record.debitMicro).toBe(costMicro(PRICE, record.promptTokens, 0));
    }
    expect(records.map((r) => r.promptTokens).sort()).toEqual([3, 6]);
    expect(gateway.ledger.checkInvariants().ok).toBe(true);
  });

  it("answer model_not_capable when no node of the model embeds", async () => {
    await startGateway();
    const node = await addNode();
    const response = await post("/v1/embeddings", { model: "fake-model", input: "x" });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe("model_not_capable");
    expect(error.message).toContain("embeddings");
    expect(node.served).toHaveLength(0);
    await expectNothingBilled();
  });

  it("refuse an oversized batch before routing: over 2048 inputs, over the body limit, token arrays", async () => {
    await startGateway(64 * 1024);
    const node = await addNode({ models: ["embedder"], capabilities: caps({ embeddings: true }) });
    const many = await post("/v1/embeddings", {
      model: "embedder",
      input: Array.from({ length: 2049 }, () => "a"),
    });
    expect(many.status).toBe(400);
    expect((await errorOf(many)).param).toBe("input");
    const big = await post("/v1/embeddings", { model: "embedder", input: ["x".repeat(70 * 1024)] });
    expect(big.status).toBe(400);
    expect((await errorOf(big)).param).toBe("input");
    const tokens = await post("/v1/embeddings", { model: "embedder", input: [[1, 2, 3]] });
    expect(tokens.status).toBe(400);
    expect((await errorOf(tokens)).param).toBe("input");
    const streamed = await post("/v1/embeddings", { model: "embedder", input: "a", stream: true });
    expect(streamed.status).toBe(400);
    expect((await errorOf(streamed)).param).toBe("stream");
    expect(node.served).toHaveLength(0);
    await expectNothingBilled();
  });
});

describe("completions", () => {
  it("serve whole and streamed text completions through the openai client, billed from their receipts", async () => {
    await startGateway();
    const plain = await addNode({ tokens: 4 });
    const node = await addNode({ tokens: 4, capabilities: caps({ completions: true }) });
    const openai = client();
    const whole = await openai.completions.create({ model: "fake-model", prompt: "once", max_tokens: 16 });
    expect(whole.choices[0]?.text).toBe("tok0 tok1 tok2 tok3 ");
    const stream = await openai.completions.create({
      model: "fake-model",
      prompt: "once",
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("tok0 tok1 tok2 tok3 ");
    expect(usage?.completion_tokens).toBe(4);
    const raw = await (
      await post("/v1/completions", { model: "fake-model", prompt: "x", max_tokens: 4, stream: true })
    ).text();
    expect(raw).not.toContain("gbt-receipt");
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(node.served).toHaveLength(3);
    expect(plain.served).toHaveLength(0);
    await gateway.settled();
    const records = gateway.ledger.usage(accountId, 10);
    expect(records).toHaveLength(3);
    for (const record of records) {
      expect(record.receiptStatus).toBe("valid");
      expect(record.completionTokens).toBe(4);
      expect(record.promptTokens).toBe(5);
    }
  });
});

describe("responses", () => {
  it("stream in OpenAI's event order without the receipt or a [DONE], and serve whole answers", async () => {
    await startGateway();
    const node = await addNode({ tokens: 3 });
    const raw = await (
      await post("/v1/responses", { model: "fake-model", input: "hi", stream: true, max_output_tokens: 16 })
    ).text();
    expect(raw).not.toContain("gbt-receipt");
    expect(raw).not.toContain("[DONE]");
    const types = [...raw.matchAll(/^event: (\S+)$/gm)].map((match) => match[1]);
    expect(types).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(raw.endsWith("\n\n")).toBe(true);

    const openai = client();
    const stream = await openai.responses.create({
      model: "fake-model",
      input: "hi",
      stream: true,
      max_output_tokens: 16,
    });
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    expect(text).toBe("tok0 tok1 tok2 ");
    expect(completed?.usage?.output_tokens).toBe(3);
    const whole = await openai.responses.create({ model: "fake-model", input: "hi", max_output_tokens: 16 });
    expect(whole.output_text).toBe("tok0 tok1 tok2 ");
    expect(node.served).toHaveLength(3);
    await gateway.settled();
    const records = gateway.ledger.usage(accountId, 10);
    expect(records).toHaveLength(3);
    for (const record of records) {
      expect(record.receiptStatus).toBe("valid");
      expect(record.completionTokens).toBe(3);
    }
  });

  it("a stream cut mid-way ends with an error event and bills only the deltas delivered", async () => {
    await startGateway();
    await addNode({ tokens: 10, tokenDelayMs: 10, faults: { dieAfterTokens: 4 } });
    const response = await post("/v1/responses", {
      model: "fake-model",
      input: "hi",
      stream: true,
      max_output_tokens: 16,
    });
    expect(response.status).toBe(200);
    const raw = await response.text();
    expect([...raw.matchAll(/^event: response\.output_text\.delta$/gm)]).toHaveLength(4);
    expect(raw).toContain("event: error\n");
    expect(raw).toContain('"code":"upstream_failed"');
    expect(raw).not.toContain("[DONE]");
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.completionTokens).toBe(4);
    expect(record?.receiptStatus).toBe("missing");
    expect(gateway.holds.heldMicro(accountId)).toBe(0);
  });
});

describe("malformed bodies", () => {
  it("are 400s naming the field on every route, never routed and never billed", async () => {
    await startGateway();
    const node = await addNode({ capabilities: caps({ embeddings: true, completions: true }) });
    const cases: [string, unknown, string | null][] = [
      ["/v1/chat/completions", { model: "fake-model", messages: [] }, "messages"],
      ["/v1/chat/completions", { model: "fake-model", messages, max_tokens: -1 }, "max_tokens"],
      ["/v1/chat/completions", { messages }, "model"],
      ["/v1/completions", { model: "fake-model", prompt: 7 }, "prompt"],
      ["/v1/completions", { model: "fake-model", prompt: "x", max_tokens: 1.5 }, "max_tokens"],
      ["/v1/completions", { model: "fake-model", prompt: "x", stream: "yes" }, "stream"],
      ["/v1/embeddings", { model: "fake-model" }, "input"],
      ["/v1/embeddings", { model: "fake-model", input: [] }, "input"],
      ["/v1/responses", { model: "fake-model" }, "input"],
      ["/v1/responses", { model: "fake-model", input: "x", max_output_tokens: 0 }, "max_output_tokens"],
      [
        "/v1/responses",
        { model: "fake-model", input: "x", previous_response_id: "resp_1" },
        "previous_response_id",
      ],
      ["/v1/responses", { model: "fake-model", input: "x", store: true }, "store"],
      ["/v1/responses", "[1]", null],
    ];
    for (const [path, body, param] of cases) {
      const response = await post(path, body);
      expect(response.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      const error = await errorOf(response);
      expect(error.param, `${path} ${JSON.stringify(body)}`).toBe(param);
      expect(response.headers.get("x-request-id")).toMatch(/^gw-/);
    }
    const invalidJson = await post("/v1/responses", "{nope");
    expect(invalidJson.status).toBe(400);
    expect((await errorOf(invalidJson)).code).toBe("invalid_json");
    expect(node.served).toHaveLength(0);
    await expectNothingBilled();
  });
});
