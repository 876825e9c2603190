/**
 * The OpenAI API as developers use it, with the clients they use, against real processes: the
 * official `openai` SDK, the Vercel AI SDK (`@ai-sdk/openai-compatible`) and LangChain
 * (`@langchain/openai`), each against `gbt serve` on the embedded backend with the generated test
 * model (grammars make its random weights write schema-valid JSON and tool calls), against
 * `gbt serve` in front of the fake Ollama and the fake OpenAI-compatible server, and through
 * `gbt gateway serve` pooling all three nodes, whose models can do different things: a request
 * reaches only a node whose model can honour it (the fakes record what reached them), and what no
 * node can honour is a 400 with nothing billed.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import {
  type FakeOllama,
  type FakeOpenAIServer,
  startFakeOllama,
  startFakeOpenAIServer,
} from "@gbt/node/testing";
import { tool as langchainTool } from "@langchain/core/tools";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { embed, embedMany, generateObject, generateText, streamText, tool } from "ai";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../../testing/run-cli.js";
import {
  type GbtProcess,
  type ServeProcess,
  startGbtProcess,
  startServeProcess,
} from "../../testing/serve-process.js";

/**
 * The model every node serves under the same id (Ollama's, with its tag), each node's with its
 * own capabilities: on the embedded node the generated small test model, whose 2048-token context
 * holds the tool documentation of tool_choice auto (the tiny model's 512 does not).
 */
const MODEL = "gbt-test-small:latest";
/** Tokens enough for a forced call or a small object (the test models' vocabulary is nearly a character per token). */
const CALL_TOKENS = 200;
/** A model only the Ollama node serves: tools, structured output and embeddings, no vision. */
const OLLAMA_TOOLS = "ollama-tools:latest";

// Bounded schemas: a random-weight model under a grammar fills them validly (notes/platform.md).
const cityArgs = z.object({ city: z.enum(["Paris", "Berlin", "Tokyo"]) });
const cityJsonSchema = {
  type: "object" as const,
  properties: { city: { type: "string" as const, enum: ["Paris", "Berlin", "Tokyo"] } },
  required: ["city"],
  additionalProperties: false,
};
const weather: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: "function",
  function: { name: "get_weather", description: "The weather in a city", parameters: cityJsonSchema },
};
const verdict = z.object({ verdict: z.enum(["yes", "no"]), confident: z.boolean() });

interface Target {
  name: string;
  baseURL: string;
  apiKey: string;
  model: string;
  /**
   * The model whose vectors are compared across requests: through the gateway one that a single
   * node embeds (the nodes' "same" model here is three different ones, so their vectors differ).
   */
  embedModel: string;
}

let fakeOpenAI: FakeOpenAIServer;
let fakeOllama: FakeOllama;
let gateway: GbtProcess;
let gatewayHome: string;
let accountId: string;
const nodes: ServeProcess[] = [];
const targets: Record<"embedded" | "openai" | "ollama" | "gateway", Target> = {} as never;

async function startNode(
  setupArgs: string[],
  gatewayUrl: string,
  serveArgs: string[] = [],
): Promise<ServeProcess> {
  const home = await tempHome("gbt-clients-node-");
  const setup = await runCli(["setup", "--yes", "--owner", TEST_OWNER, ...setupArgs], { GBT_HOME: home });
  expect(setup.exitCode, setup.stderr).toBe(0);
  if (serveArgs.length > 0) {
    // The file's name is the model's id.
    const out = join(home, `${MODEL}.gguf`);
    const init = await runCli(["model", "test-init", "--shape", "small", "--out", out], { GBT_HOME: home });
    expect(init.exitCode, init.stderr).toBe(0);
    serveArgs.push("--model", out);
  }
  const node = await startServeProcess(["--gateway", gatewayUrl, ...serveArgs], { GBT_HOME: home });
  nodes.push(node);
  return node;
}

function gatewayDb<T>(query: (db: Database.Database) => T): T {
  const db = new Database(join(gatewayHome, "data", "gateway", "gateway.db"), { readonly: true });
  try {
    return query(db);
  } finally {
    db.close();
  }
}
const usageCount = (account = accountId) =>
  gatewayDb(
    (db) =>
      (
        db.prepare("SELECT count(*) AS n FROM usage_records WHERE account_id = ?").get(account) as {
          n: number;
        }
      ).n,
  );

beforeAll(async () => {
  fakeOpenAI = await startFakeOpenAIServer({ models: [MODEL] });
  fakeOllama = await startFakeOllama({
    models: [
      // Same id as the others, but text only: tools, structured output and embeddings never reach it.
      { name: MODEL, capabilities: ["completion"] },
      { name: OLLAMA_TOOLS, capabilities: ["completion", "tools", "embedding"] },
    ],
  });
  gatewayHome = await tempHome("gbt-clients-gw-");
  await mkdir(join(gatewayHome, "config"), { recursive: true });
  await writeFile(
    join(gatewayHome, "config", "gateway.json"),
    JSON.stringify({ allowPrivateNodes: true, routing: { rampUpDays: 0 }, verification: { enabled: false } }),
  );
  gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
    GBT_HOME: gatewayHome,
  });
  const gatewayUrl = String(gateway.first.url);
  const [embedded, openai, ollama] = await Promise.all([
    startNode([], gatewayUrl, ["--threads", "1"]),
    startNode(["--backend", "openai", "--backend-url", fakeOpenAI.url], gatewayUrl),
    startNode(["--backend", "ollama", "--backend-url", fakeOllama.url], gatewayUrl),
  ]);
  const adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
  const until = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    if (((await response.json()) as { data: unknown[] }).data.length === 3) break;
    if (Date.now() > until) throw new Error("the three nodes did not register");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const created = onlyJson<{ account: { id: string }; key: { key: string } }>(
    (await runCli(["gateway", "keys", "create", "clients", "--json"], { GBT_HOME: gatewayHome })).stdout,
  );
  accountId = created.account.id;
  targets.embedded = {
    name: "gbt serve (embedded)",
    baseURL: `${embedded?.url}/v1`,
    apiKey: "none",
    model: MODEL,
    embedModel: MODEL,
  };
  targets.openai = {
    name: "gbt serve (OpenAI-compatible)",
    baseURL: `${openai?.url}/v1`,
    apiKey: "none",
    model: MODEL,
    embedModel: MODEL,
  };
  targets.ollama = {
    name: "gbt serve (Ollama)",
    baseURL: `${ollama?.url}/v1`,
    apiKey: "none",
    model: OLLAMA_TOOLS,
    embedModel: OLLAMA_TOOLS,
  };
  targets.gateway = {
    name: "the gateway",
    baseURL: `${gatewayUrl}/v1`,
    apiKey: created.key.key,
    model: MODEL,
    embedModel: OLLAMA_TOOLS,
  };
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
  await gateway?.stop("SIGKILL");
  await fakeOpenAI?.close();
  await fakeOllama?.close();
});

const sdk = (t: Target) => new OpenAI({ baseURL: t.baseURL, apiKey: t.apiKey, maxRetries: 0 });

const TARGETS = ["embedded", "openai", "ollama", "gateway"] as const;

describe.each(TARGETS)("the official openai SDK against %s", (key) => {
  it("tool_choice required, streamed: the call arrives in fragments and fits the schema", async () => {
    const t = targets[key];
    const stream = sdk(t).chat.completions.stream({
      model: t.model,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: key === "ollama" ? "auto" : "required",
      max_tokens: CALL_TOKENS,
    });
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.name).toBe("get_weather");
    expect(call?.id).toBeTruthy();
    expect(cityArgs.parse(JSON.parse(call?.type === "function" ? call.function.arguments : ""))).toBeTruthy();
  });

  it("a named tool, whole, then a full round trip with the tool's result", async () => {
    const t = targets[key];
    const client = sdk(t);
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "What is the weather in Tokyo?" },
    ];
    const first = await client.chat.completions.create({
      model: t.model,
      messages,
      tools: [weather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      max_tokens: CALL_TOKENS,
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    if (call?.type !== "function") throw new Error("no function call");
    expect(cityArgs.safeParse(JSON.parse(call.function.arguments)).success).toBe(true);
    messages.push(first.choices[0]?.message as OpenAI.Chat.Completions.ChatCompletionMessageParam);
    messages.push({ role: "tool", tool_call_id: call.id, content: '{"celsius":21}' });
    const answer = await client.chat.completions.create({
      model: t.model,
      messages,
      tools: [weather],
      tool_choice: "none",
      max_tokens: 8,
    });
    expect(typeof answer.choices[0]?.message.content).toBe("string");
    expect(answer.choices[0]?.finish_reason).not.toBe("tool_calls");
  });

  it("tool_choice auto: either a call that fits the schema, or text", async () => {
    const t = targets[key];
    const answer = await sdk(t).chat.completions.create({
      model: t.model,
      messages: [{ role: "user", content: "Weather in Berlin?" }],
      tools: [weather],
      max_tokens: CALL_TOKENS,
    });
    const choice = answer.choices[0];
    if (choice?.finish_reason === "tool_calls") {
      const call = choice.message.tool_calls?.[0];
      expect(
        call?.type === "function" && cityArgs.safeParse(JSON.parse(call.function.arguments)).success,
      ).toBe(true);
    } else expect(typeof choice?.message.content).toBe("string");
  });

  it("embeddings.create: one vector per input, the same text the same vector", async () => {
    const t = targets[key];
    const answer = await sdk(t).embeddings.create({ model: t.embedModel, input: ["alpha", "beta", "alpha"] });
    expect(answer.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const [a, b, c] = answer.data.map((d) => d.embedding);
    expect(a?.length).toBeGreaterThan(0);
    expect(a).toEqual(c);
    expect(a).not.toEqual(b);
    expect(answer.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("completions.create, whole and streamed", async () => {
    const t = targets[key];
    const client = sdk(t);
    const whole = await client.completions.create({
      model: t.model,
      prompt: "Once upon a time",
      max_tokens: 4,
    });
    expect(whole.object).toBe("text_completion");
    expect(typeof whole.choices[0]?.text).toBe("string");
    expect(whole.usage?.completion_tokens).toBeGreaterThan(0);
    const stream = await client.completions.create({
      model: t.model,
      prompt: "Once",
      max_tokens: 4,
      stream: true,
    });
    let finish: string | null | undefined;
    for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    expect(["stop", "length"]).toContain(finish);
  });

  it("responses.create, whole and streamed (the response.* sequence)", async () => {
    const t = targets[key];
    const client = sdk(t);
    const whole = await client.responses.create({ model: t.model, input: "Hello", max_output_tokens: 4 });
    expect(whole.object).toBe("response");
    expect(typeof whole.output_text).toBe("string");
    expect(whole.usage?.output_tokens).toBeGreaterThan(0);
    const stream = await client.responses.create({
      model: t.model,
      input: "Hello",
      max_output_tokens: 4,
      stream: true,
    });
    const types: string[] = [];
    let deltas = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") deltas += event.delta;
    }
    expect(types[0]).toBe("response.created");
    expect(["response.completed", "response.incomplete"]).toContain(types.at(-1));
    const done = (await client.responses.create({
      model: t.model,
      input: "Hello",
      max_output_tokens: 4,
      stream: true,
    })) as AsyncIterable<{ type: string }>;
    for await (const _ of done) {
      // drained: a second stream on the same connection works (nothing left hanging)
    }
    expect(typeof deltas).toBe("string");
  });
});

describe.each(TARGETS)("structured outputs and tools in the other clients against %s", (key) => {
  it("openai chat.completions.parse with a zod response_format", async () => {
    const t = targets[key];
    const parsed = await sdk(t).chat.completions.parse({
      model: t.model,
      messages: [{ role: "user", content: "Is the sky blue?" }],
      response_format: zodResponseFormat(verdict, "verdict"),
      max_tokens: CALL_TOKENS,
    });
    expect(verdict.parse(parsed.choices[0]?.message.parsed)).toBeTruthy();
  });

  it("the Vercel AI SDK: generateText with tools and toolChoice required, generateObject, streamText", async () => {
    const t = targets[key];
    const provider = createOpenAICompatible({
      name: "gbt",
      baseURL: t.baseURL,
      apiKey: t.apiKey,
      supportsStructuredOutputs: true,
      includeUsage: true,
    });
    const model = provider.chatModel(t.model);
    const called = await generateText({
      model,
      prompt: "Weather in Paris?",
      tools: { get_weather: tool({ description: "The weather in a city", inputSchema: cityArgs }) },
      toolChoice: "required",
      maxOutputTokens: CALL_TOKENS,
      maxRetries: 0,
    });
    expect(called.finishReason).toBe("tool-calls");
    expect(called.toolCalls[0]?.toolName).toBe("get_weather");
    expect(cityArgs.parse(called.toolCalls[0]?.input)).toBeTruthy();
    const object = await generateObject({
      model,
      schema: verdict,
      prompt: "Is water wet?",
      maxOutputTokens: CALL_TOKENS,
      maxRetries: 0,
    });
    expect(verdict.parse(object.object)).toBeTruthy();
    const streamed = streamText({ model, prompt: "Hello", maxOutputTokens: 6, maxRetries: 0 });
    let text = "";
    for await (const piece of streamed.textStream) text += piece;
    expect(typeof text).toBe("string");
    expect((await streamed.usage).outputTokens).toBeGreaterThan(0);
  });

  it("LangChain: bindTools and withStructuredOutput", async () => {
    const t = targets[key];
    const chat = new ChatOpenAI({
      model: t.model,
      apiKey: t.apiKey,
      configuration: { baseURL: t.baseURL },
      maxRetries: 0,
      maxTokens: CALL_TOKENS,
    });
    const getWeather = langchainTool(async () => "21°C", {
      name: "get_weather",
      description: "The weather in a city",
      schema: cityJsonSchema,
    });
    const message = await chat
      .bindTools([getWeather], { tool_choice: "get_weather" })
      .invoke("Weather in Paris?");
    expect(message.tool_calls?.[0]?.name).toBe("get_weather");
    expect(cityArgs.parse(message.tool_calls?.[0]?.args)).toBeTruthy();
    const structured = chat.withStructuredOutput(
      { title: "verdict", ...z.toJSONSchema(verdict) } as Record<string, unknown>,
      { method: "jsonSchema", name: "verdict" },
    );
    expect(verdict.parse(await structured.invoke("Is the sky blue?"))).toBeTruthy();
  });
});

describe.each(TARGETS)("embeddings in the other clients against %s", (key) => {
  it("the Vercel AI SDK's embed/embedMany and LangChain's OpenAIEmbeddings", async () => {
    const t = targets[key];
    const provider = createOpenAICompatible({ name: "gbt", baseURL: t.baseURL, apiKey: t.apiKey });
    const one = await embed({ model: provider.embeddingModel(t.embedModel), value: "alpha", maxRetries: 0 });
    const many = await embedMany({
      model: provider.embeddingModel(t.embedModel),
      values: ["alpha", "beta"],
      maxRetries: 0,
    });
    expect(many.embeddings[0]).toEqual(one.embedding);
    expect(many.embeddings[1]).not.toEqual(one.embedding);
    const lc = new OpenAIEmbeddings({
      model: t.embedModel,
      apiKey: t.apiKey,
      configuration: { baseURL: t.baseURL },
      maxRetries: 0,
    });
    const [query, docs] = await Promise.all([lc.embedQuery("alpha"), lc.embedDocuments(["alpha", "beta"])]);
    expect(query.length).toBe(one.embedding.length);
    for (const [i, x] of (docs[0] ?? []).entries()) expect(x).toBeCloseTo(query[i] as number, 5);
  });
});

describe("the gateway routes by capability, and refuses what no node can do, billing nothing", () => {
  it("tools, structured output and embeddings never reach the text-only Ollama model of the same id", async () => {
    const client = sdk(targets.gateway);
    for (let i = 0; i < 6; i++) {
      await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "Weather?" }],
        tools: [weather],
        tool_choice: "required",
        max_tokens: CALL_TOKENS,
      });
      await client.embeddings.create({ model: MODEL, input: "x" });
    }
    const reachedOllama = fakeOllama.requests.filter((r) => {
      const body = (r.body ?? {}) as { model?: string; tools?: unknown; format?: unknown };
      return (
        (body.model ?? "").startsWith(MODEL) &&
        (body.tools !== undefined || body.format !== undefined || r.path === "/api/embed")
      );
    });
    expect(reachedOllama).toEqual([]);
  });

  it("each malformed or unservable request is a specific 400 in OpenAI's shape, and nothing is billed", async () => {
    // An account of its own: its ledger holds exactly what this test sent.
    const created = onlyJson<{ account: { id: string }; key: { key: string } }>(
      (await runCli(["gateway", "keys", "create", "bad-input", "--json"], { GBT_HOME: gatewayHome })).stdout,
    );
    const { baseURL } = targets.gateway;
    const apiKey = created.key.key;
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${baseURL}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify(body),
      });
      const json = (await response.json()) as {
        error: { type: string; param: string | null; code: string; message: string };
      };
      return { status: response.status, ...json.error, requestId: response.headers.get("x-request-id") };
    };
    const user = { role: "user", content: "hi" };
    const cases: Array<[string, unknown, string | null]> = [
      [
        "/chat/completions",
        {
          model: MODEL,
          messages: [user],
          tools: [{ type: "function", function: { name: "f", parameters: { type: 3 } } }],
        },
        "tools[0].function.parameters",
      ],
      [
        "/chat/completions",
        { model: MODEL, messages: [user, { role: "tool", tool_call_id: "call_nope", content: "x" }] },
        "messages[1].tool_call_id",
      ],
      [
        "/chat/completions",
        {
          model: MODEL,
          messages: [user],
          response_format: { type: "json_schema", json_schema: { name: "x", schema: { required: "city" } } },
        },
        "response_format.json_schema.schema",
      ],
      [
        "/chat/completions",
        {
          model: OLLAMA_TOOLS,
          messages: [
            {
              role: "user",
              content: [{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }],
            },
          ],
        },
        null,
      ],
      ["/chat/completions", { model: MODEL, messages: [user], n: 3 }, "n"],
      ["/embeddings", { model: MODEL, input: Array.from({ length: 2049 }, () => "x") }, "input"],
    ];
    for (const [path, body, param] of cases) {
      const answer = await post(path, body);
      expect({ path, status: answer.status, type: answer.type }).toEqual({
        path,
        status: 400,
        type: "invalid_request_error",
      });
      if (param !== null) expect(answer.param).toBe(param);
      else expect(answer.code).toBe("model_not_capable");
      expect(answer.message.length).toBeGreaterThan(10);
      expect(answer.requestId).toBeTruthy();
    }
    // One valid request after them: once it is billed, everything before it was settled too.
    await sdk({ ...targets.gateway, apiKey }).chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 2,
    });
    await expect.poll(() => usageCount(created.account.id)).toBe(1);
  });

  it("GET /v1/models lists each model's capabilities as supported_parameters", async () => {
    const models = await sdk(targets.gateway).models.list();
    const tiny = models.data.find((m) => m.id === MODEL) as unknown as { supported_parameters: string[] };
    const tools = models.data.find((m) => m.id === OLLAMA_TOOLS) as unknown as {
      supported_parameters: string[];
    };
    expect(tiny.supported_parameters).toEqual(
      expect.arrayContaining(["tools", "tool_choice", "response_format"]),
    );
    expect(tools.supported_parameters).toEqual(expect.arrayContaining(["tools", "response_format"]));
    expect(tools.supported_parameters).not.toContain("logprobs");
  });

  it("embeddings are billed by input tokens only, each request once, from the node's receipt", async () => {
    const before = usageCount();
    await sdk(targets.gateway).embeddings.create({ model: MODEL, input: ["one input", "and another"] });
    await expect.poll(usageCount).toBe(before + 1);
    const last = gatewayDb(
      (db) =>
        db
          .prepare(
            "SELECT prompt_tokens, completion_tokens, receipt_status FROM usage_records WHERE account_id = ? ORDER BY created_at DESC LIMIT 1",
          )
          .get(accountId) as { prompt_tokens: number; completion_tokens: number; receipt_status: string },
    );
    expect(last.completion_tokens).toBe(0);
    expect(last.prompt_tokens).toBeGreaterThan(0);
    expect(last.receipt_status).toBe("valid");
  });
});
