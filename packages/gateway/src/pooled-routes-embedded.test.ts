/**
 * The pooled routes on real inference: three in-process nodes (node servers on loopback, one
 * embedded llama.cpp backend on the generated test model, one thread) linked to a real gateway, each
 * advertising other capabilities through its signed registration. Each node's backend records what
 * it was asked, so routing is checked where it lands (the `small` test model: its 2,048-token
 * context holds a tool definition's prompt); every answer is billed from the node's own
 * receipt, so the gateway's relay counts are checked against a real node's.
 *
 * @gbt/node is loaded at run time (the gateway package does not depend on it; tests only).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModelCapabilitiesDetails } from "@gbt/protocol";
import OpenAI from "openai";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "./gateway-config.js";
import { type GatewayServer, startGatewayServer } from "./gateway-server.js";

/** The few @gbt/node exports used here, typed locally. */
interface NodeBackend {
  listModels(): Promise<{ id: string; digest?: string; capabilities?: ModelCapabilitiesDetails }[]>;
  close(): Promise<void>;
}
interface NodeServerHandle {
  url: string;
  inFlight(): number;
  close(deadlineMs?: number): Promise<void>;
}
interface LinkHandle {
  ready: Promise<unknown>;
  isLinkToken(token: string): boolean;
  signReceipt(receipt: unknown): Promise<unknown>;
  stop(): Promise<void>;
}
interface NodePackage {
  generateTestModel(
    path: string,
    options: { seed: number; shape?: string },
  ): Promise<{ path: string; sha256: string }>;
  createEmbeddedBackend(options: {
    models: { id: string; path: string }[];
    threads: number;
    capacity: number;
  }): NodeBackend;
  startNodeServer(options: Record<string, unknown>): Promise<NodeServerHandle>;
  startGatewayLink(options: Record<string, unknown>): LinkHandle;
}

const MODEL = "gbt-test-small";
const logger = pino({ level: "silent" });

/** What one node's backend was asked: the method and whether the request carried tools or a format. */
interface Asked {
  method: string;
  tools: boolean;
  format: boolean;
}

let dir: string;
let gateway: GatewayServer;
let apiKey: string;
let accountId: string;
const asked: Record<"plain" | "tools" | "full", Asked[]> = { plain: [], tools: [], full: [] };
const cleanups: Array<() => Promise<void>> = [];

/** The backend as one node sees it: the shared embedded backend, recording what this node asks of it. */
function recording(backend: NodeBackend, into: Asked[]): NodeBackend {
  const recorded = new Set(["chat", "chatStream", "completeStream", "embed"]);
  return new Proxy(backend, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      if (!recorded.has(String(property))) return value.bind(target);
      return (request: { tools?: unknown[]; responseFormat?: { type?: string } }, ...rest: unknown[]) => {
        into.push({
          method: String(property),
          tools: (request.tools?.length ?? 0) > 0,
          format: request.responseFormat !== undefined && request.responseFormat.type !== "text",
        });
        return value.call(target, request, ...rest);
      };
    },
  });
}

beforeAll(async () => {
  const gbtNode = (await import("@gbt/node" as string)) as NodePackage;
  dir = mkdtempSync(join(tmpdir(), "gbt-pooled-routes-embedded-"));
  const model = await gbtNode.generateTestModel(join(dir, "small.gguf"), { seed: 1, shape: "small" });
  const backend = gbtNode.createEmbeddedBackend({
    models: [{ id: MODEL, path: model.path }],
    threads: 1,
    capacity: 4,
  });
  cleanups.push(() => backend.close());
  const [reported] = await backend.listModels();
  const full = reported?.capabilities as ModelCapabilitiesDetails;
  expect(full).toMatchObject({
    chat: true,
    tools: true,
    jsonSchema: true,
    embeddings: true,
    completions: true,
  });

  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      prices: { "*": { inputPerMillion: 1000, outputPerMillion: 4000 } },
      routing: { rampUpDays: 0 },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-tests-0123456789",
    logger,
  });
  const created = gateway.accounts.createAccount({ name: "alice" });
  accountId = created.id;
  apiKey = gateway.accounts.createApiKey(created.id, "test").key;

  // Three nodes of one model: chat only, chat with tools, everything the embedded backend does.
  const advertised: Record<keyof typeof asked, ModelCapabilitiesDetails> = {
    plain: { ...full, tools: false, jsonSchema: false, embeddings: false, completions: false },
    tools: { ...full, jsonSchema: false, embeddings: false, completions: false },
    full,
  };
  for (const name of ["plain", "tools", "full"] as const) {
    let link: LinkHandle | null = null;
    const server = await gbtNode.startNodeServer({
      backend: recording(backend, asked[name]),
      logger,
      capacity: 4,
      gatewayLink: {
        isLinkToken: (token: string) => link?.isLinkToken(token) ?? false,
        signReceipt: (receipt: unknown) => (link as LinkHandle).signReceipt(receipt),
      },
    });
    link = gbtNode.startGatewayLink({
      gatewayUrl: gateway.url,
      account: privateKeyToAccount(generatePrivateKey()),
      nodeUrl: server.url,
      capacity: 4,
      chainId: 31_337,
      // What the node's own backend reports, narrowed to this node's share.
      models: async () =>
        (await backend.listModels()).map((m) => ({
          id: m.id,
          digest: m.digest,
          capabilities: advertised[name],
        })),
      backend: { kind: "embedded", version: "test" },
      inFlight: () => server.inFlight(),
      health: async () => ({ ok: true }),
      latestBenchmark: () => null,
      logger,
    });
    await link.ready;
    cleanups.unshift(async () => {
      await link?.stop();
      await server.close(100);
    });
  }
}, 60_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  await gateway?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });
const post = (path: string, body: unknown) =>
  fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: JSON.stringify(body),
  });
const weather = {
  type: "function" as const,
  function: {
    name: "weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string", enum: ["Oslo", "Lima"] } },
      required: ["city"],
    },
  },
};

describe("pooled routes on real nodes", () => {
  it("routes tools and json_schema only to nodes that advertise them, and says when none can", async () => {
    const openai = client();
    for (let i = 0; i < 3; i++) {
      await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Weather?" }],
        tools: [weather],
        max_tokens: 24,
        seed: i,
      });
    }
    const stream = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Weather?" }],
      tools: [weather],
      max_tokens: 24,
      stream: true,
    });
    for await (const _chunk of stream) {
      // drained
    }
    for (let i = 0; i < 2; i++) {
      await openai.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Answer." }],
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "answer",
            schema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
          },
        },
        max_tokens: 24,
      });
    }
    expect(asked.plain.filter((a) => a.tools || a.format)).toEqual([]);
    expect(asked.tools.filter((a) => a.format)).toEqual([]);
    expect([...asked.tools, ...asked.full].filter((a) => a.tools)).toHaveLength(4);
    expect(asked.full.filter((a) => a.format)).toHaveLength(2);

    const vision = await post("/v1/chat/completions", {
      model: MODEL,
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA" } }] },
      ],
      max_tokens: 8,
    });
    expect(vision.status).toBe(400);
    expect(((await vision.json()) as { error: { code: string } }).error.code).toBe("model_not_capable");

    await gateway.settled();
    for (const record of gateway.ledger.usage(accountId, 100)) expect(record.receiptStatus).toBe("valid");
  });

  it("serves embeddings from the node that embeds and bills its input tokens only", async () => {
    const before = asked.full.filter((a) => a.method === "embed").length;
    const result = await client().embeddings.create({ model: MODEL, input: ["the sea", "a ship at sea"] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding.length).toBeGreaterThan(0);
    expect(asked.full.filter((a) => a.method === "embed").length).toBe(before + 1);
    expect([...asked.plain, ...asked.tools].filter((a) => a.method === "embed")).toEqual([]);
    await gateway.settled();
    const [record] = gateway.ledger.usage(accountId, 1);
    expect(record?.receiptStatus).toBe("valid");
    expect(record?.completionTokens).toBe(0);
    expect(record?.promptTokens).toBe(result.usage.prompt_tokens);
  });

  it("streams completions and responses, each settled from a valid receipt; no [DONE] on responses", async () => {
    const openai = client();
    const stream = await openai.completions.create({
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 12,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text.length).toBeGreaterThan(0);
    expect([...asked.plain, ...asked.tools].filter((a) => a.method === "completeStream")).toEqual([]);

    const raw = await (
      await post("/v1/responses", {
        model: MODEL,
        input: "Tell me about the sea.",
        stream: true,
        max_output_tokens: 12,
      })
    ).text();
    expect(raw).not.toContain("[DONE]");
    expect(raw).not.toContain("gbt-receipt");
    const types = [...raw.matchAll(/^event: (\S+)$/gm)].map((match) => match[1]);
    expect(types.slice(0, 2)).toEqual(["response.created", "response.in_progress"]);
    expect(types.at(-1)).toMatch(/^response\.(completed|incomplete)$/);

    const responseStream = await openai.responses.create({
      model: MODEL,
      input: "Tell me about the sea.",
      stream: true,
      max_output_tokens: 12,
    });
    let deltas = "";
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of responseStream) {
      if (event.type === "response.output_text.delta") deltas += event.delta;
      if (event.type === "response.completed" || event.type === "response.incomplete") final = event.response;
    }
    const finalText = (final?.output ?? [])
      .flatMap((item) => (item.type === "message" ? item.content : []))
      .map((part) => (part.type === "output_text" ? part.text : ""))
      .join("");
    expect(finalText).toBe(deltas);
    const whole = await openai.responses.create({
      model: MODEL,
      input: "Tell me about the sea.",
      max_output_tokens: 12,
    });
    expect(whole.usage?.output_tokens).toBeGreaterThan(0);

    await gateway.settled();
    const records = gateway.ledger.usage(accountId, 4);
    expect(records).toHaveLength(4);
    for (const record of records) expect(record.receiptStatus).toBe("valid");
  });

  it("lists the model with what its nodes advertise together", async () => {
    const listed = (await (
      await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })
    ).json()) as {
      data: {
        id: string;
        supported_parameters: string[];
        capabilities: Record<string, unknown>;
        context_length: number | null;
      }[];
    };
    const entry = listed.data.find((m) => m.id === MODEL);
    expect(entry?.supported_parameters).toEqual(
      expect.arrayContaining(["tools", "tool_choice", "response_format"]),
    );
    expect(entry?.capabilities).toMatchObject({ embeddings: true, completions: true, vision: false });
    expect(entry?.context_length).toBeGreaterThan(0);
  });
});
