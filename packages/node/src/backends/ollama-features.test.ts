import { HttpError, isGbtError } from "@gbt/protocol";
import { afterEach, describe, expect, it } from "vitest";
import {
  type FakeOllama,
  type FakeOllamaOptions,
  startFakeOllama,
  textVector,
} from "../testing/fake-ollama.js";
import { createOllamaBackend } from "./ollama.js";
import type { Backend, ChatMessage, ChatStreamEvent, CompletionRequest, ToolDefinition } from "./types.js";

const fakes: FakeOllama[] = [];
const backends: Backend[] = [];

afterEach(async () => {
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function setup(options: FakeOllamaOptions = {}) {
  const fake = await startFakeOllama({
    models: [
      { name: "tiny", capabilities: ["completion", "tools"] },
      { name: "eyes", capabilities: ["completion", "vision"] },
      { name: "plain", capabilities: ["completion"] },
      { name: "embedder", capabilities: ["embedding"], embeddingLength: 8, contextLength: 16 },
    ],
    ...options,
  });
  fakes.push(fake);
  const backend = createOllamaBackend({ host: fake.url });
  backends.push(backend);
  return { fake, backend };
}

async function drain(stream: AsyncIterable<ChatStreamEvent>) {
  const events: ChatStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** The backend's raw completion stream (the Ollama backend always has one). */
function complete(backend: Backend, request: CompletionRequest): AsyncIterable<ChatStreamEvent> {
  if (backend.completeStream === undefined) throw new Error("the backend has no completeStream");
  return backend.completeStream(request);
}

/** What reached the fake on `path`, in order. */
const bodies = (fake: FakeOllama, path: string) =>
  fake.requests.filter((r) => r.path === path).map((r) => r.body as Record<string, unknown>);

/** The names of the tools a chat body offered. */
const toolNames = (body: Record<string, unknown> | undefined) =>
  ((body?.tools ?? []) as Array<{ function: { name: string } }>).map((tool) => tool.function.name);

const weather: ToolDefinition = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"],
  },
};
const time: ToolDefinition = { name: "get_time", parameters: { type: "object", properties: {} } };
const ask = [{ role: "user" as const, content: "What is the weather in Paris?" }];

/** A 1×1 transparent PNG. */
const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";

async function refusal(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HttpError);
  return error as HttpError;
}

describe("Ollama backend: tools", () => {
  it("offers the tools in Ollama's shape and returns the model's call as OpenAI's, whole", async () => {
    const { fake, backend } = await setup();
    const result = await backend.chat({ model: "tiny", messages: ask, tools: [weather] });
    expect(bodies(fake, "/api/chat")[0]?.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "The weather in a city",
          parameters: weather.parameters,
        },
      },
    ]);
    const answered = fake.requests.at(-1)?.sent[0] as { message: { tool_calls: Array<{ id: string }> } };
    expect(result.finishReason).toBe("tool_calls");
    expect(result.toolCalls).toEqual([
      {
        id: answered.message.tool_calls[0]?.id,
        name: "get_weather",
        arguments: JSON.stringify({ city: "city", unit: "celsius" }),
      },
    ]);
    expect(result.toolCalls?.[0]?.id).toMatch(/^call_/);
    expect(result.text).toBe("");
    expect(result.usage.completionTokens).toBeGreaterThan(0);
  });

  it("streams a call as one tool_call event with the arguments as JSON text, then 'tool_calls'", async () => {
    const { fake, backend } = await setup();
    const events = await drain(backend.chatStream({ model: "tiny", messages: ask, tools: [weather] }));
    const final = fake.requests.at(-1)?.sent.at(-1) as Record<string, number>;
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      type: "tool_call",
      index: 0,
      name: "get_weather",
      arguments: '{"city":"city","unit":"celsius"}',
    });
    expect((events[0] as { id: string }).id).toMatch(/^call_/);
    expect(events[1]).toMatchObject({
      type: "done",
      finishReason: "tool_calls",
      usage: { promptTokens: final.prompt_eval_count, completionTokens: final.eval_count },
    });
  });

  it("makes ids of its own when Ollama answers calls without one, unique within the answer", async () => {
    const { backend } = await setup({ toolCallIds: false, toolCallsPerAnswer: 2 });
    const result = await backend.chat({ model: "tiny", messages: ask, tools: [weather, time] });
    const ids = result.toolCalls?.map((call) => call.id) ?? [];
    expect(result.toolCalls?.map((call) => call.name)).toEqual(["get_weather", "get_time"]);
    expect(ids.every((id) => /^call_[A-Za-z0-9_-]{8,}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(2);
  });

  it("indexes several calls in order, and keeps only the first when parallel calls are off", async () => {
    const { backend } = await setup({ toolCallsPerAnswer: 2 });
    const request = { model: "tiny", messages: ask, tools: [weather, time] };
    const events = await drain(backend.chatStream(request));
    expect(events.flatMap((e) => (e.type === "tool_call" ? [[e.index, e.name]] : []))).toEqual([
      [0, "get_weather"],
      [1, "get_time"],
    ]);
    const single = await drain(backend.chatStream({ ...request, parallelToolCalls: false }));
    expect(single.filter((e) => e.type === "tool_call").map((e) => (e as { name: string }).name)).toEqual([
      "get_weather",
    ]);
    const whole = await backend.chat({ ...request, parallelToolCalls: false });
    expect(whole.toolCalls?.map((call) => call.name)).toEqual(["get_weather"]);
  });

  it("tool_choice: none sends no tools (a text answer), a named function sends only that tool, required sends all", async () => {
    const { fake, backend } = await setup();
    const none = await backend.chat({
      model: "tiny",
      messages: ask,
      tools: [weather, time],
      toolChoice: "none",
    });
    expect(bodies(fake, "/api/chat")[0]).not.toHaveProperty("tools");
    expect(none).toMatchObject({ text: "Hello, world!", finishReason: "stop" });
    expect(none.toolCalls).toBeUndefined();

    const named = await backend.chat({
      model: "tiny",
      messages: ask,
      tools: [weather, time],
      toolChoice: { name: "get_time" },
    });
    expect(toolNames(bodies(fake, "/api/chat")[1])).toEqual(["get_time"]);
    expect(named.toolCalls?.map((call) => [call.name, call.arguments])).toEqual([["get_time", "{}"]]);

    await backend.chat({ model: "tiny", messages: ask, tools: [weather, time], toolChoice: "required" });
    expect(toolNames(bodies(fake, "/api/chat")[2])).toEqual(["get_weather", "get_time"]);

    const unknown = await refusal(
      backend.chat({ model: "tiny", messages: ask, tools: [weather], toolChoice: { name: "nope" } }),
    );
    expect(unknown.param).toBe("tool_choice");
    expect(bodies(fake, "/api/chat")).toHaveLength(3);
  });

  it("sends a tool without parameters as a call taking any object", async () => {
    const { fake, backend } = await setup();
    await backend.chat({ model: "tiny", messages: ask, tools: [{ name: "ping" }] });
    expect(bodies(fake, "/api/chat")[0]?.tools).toEqual([
      { type: "function", function: { name: "ping", parameters: { type: "object", properties: {} } } },
    ]);
  });

  it("sends the history's calls with object arguments and names each tool result after its call; the answer is text", async () => {
    const { fake, backend } = await setup();
    const messages: ChatMessage[] = [
      ...ask,
      {
        role: "assistant",
        content: "",
        toolCalls: [
          { id: "call_1", name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
          { id: "call_2", name: "get_time", arguments: "" },
        ],
      },
      { role: "tool", toolCallId: "call_1", content: '{"temperature":21}' },
      { role: "tool", toolCallId: "call_2", name: "get_time", content: "12:00" },
    ];
    for (const answer of [
      await backend.chat({ model: "tiny", messages, tools: [weather, time] }),
      await (async () => {
        const events = await drain(backend.chatStream({ model: "tiny", messages, tools: [weather, time] }));
        return {
          text: events.flatMap((e) => (e.type === "delta" ? [e.text] : [])).join(""),
          finishReason: (events.at(-1) as { finishReason: string }).finishReason,
        };
      })(),
    ]) {
      expect(answer).toMatchObject({ text: "Hello, world!", finishReason: "stop" });
    }
    for (const body of bodies(fake, "/api/chat")) {
      expect(body.messages).toEqual([
        { role: "user", content: "What is the weather in Paris?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [
            {
              id: "call_1",
              function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
            },
            { id: "call_2", function: { name: "get_time", arguments: {} } },
          ],
        },
        { role: "tool", content: '{"temperature":21}', tool_name: "get_weather", tool_call_id: "call_1" },
        { role: "tool", content: "12:00", tool_name: "get_time", tool_call_id: "call_2" },
      ]);
    }
  });

  it("refuses a history call whose arguments are not a JSON object, naming the message, before calling Ollama", async () => {
    const { fake, backend } = await setup();
    for (const args of ["{not json", "[1, 2]", "42"]) {
      const messages: ChatMessage[] = [
        ...ask,
        {
          role: "assistant",
          content: "",
          toolCalls: [{ id: "call_1", name: "get_weather", arguments: args }],
        },
        { role: "tool", toolCallId: "call_1", content: "sunny" },
      ];
      const whole = await refusal(backend.chat({ model: "tiny", messages, tools: [weather] }));
      expect(whole).toMatchObject({
        wireCode: "invalid_value",
        status: 400,
        param: "messages[1].tool_calls",
      });
      const streamed = await refusal(
        drain(backend.chatStream({ model: "tiny", messages, tools: [weather] })),
      );
      expect(streamed.param).toBe("messages[1].tool_calls");
    }
    expect(bodies(fake, "/api/chat")).toHaveLength(0);
  });

  it("reports tools sent to a model without them as Ollama's refusal (INVALID_INPUT)", async () => {
    const { backend } = await setup();
    const error = await backend
      .chat({ model: "plain", messages: ask, tools: [weather] })
      .catch((e: unknown) => e);
    expect(isGbtError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toContain("does not support tools");
  });
});

describe("Ollama backend: images", () => {
  const look = (url: string): ChatMessage[] => [
    { role: "system", content: "Describe images." },
    { role: "user", content: "What is this?", images: [{ url }] },
  ];

  it("sends a data: URL's payload as the message's base64 image, streamed and whole", async () => {
    const { fake, backend } = await setup();
    const url = `data:image/png;base64,${PNG_BASE64}`;
    await backend.chat({ model: "eyes", messages: look(url) });
    await drain(backend.chatStream({ model: "eyes", messages: look(url) }));
    for (const body of bodies(fake, "/api/chat")) {
      expect(body.messages).toEqual([
        { role: "system", content: "Describe images." },
        { role: "user", content: "What is this?", images: [PNG_BASE64] },
      ]);
    }
    expect(fake.requests.every((r) => r.status === 200)).toBe(true);
  });

  it("refuses an http(s) image URL, naming the message, without fetching it or calling Ollama", async () => {
    const { fake, backend } = await setup();
    for (const url of ["https://example.com/cat.png", `http://127.0.0.1:1/cat.png`]) {
      const error = await refusal(backend.chat({ model: "eyes", messages: look(url) }));
      expect(error).toMatchObject({ wireCode: "invalid_value", param: "messages[1].content" });
      expect(error.message).toContain("Only data: URLs");
      const streamed = await refusal(drain(backend.chatStream({ model: "eyes", messages: look(url) })));
      expect(streamed.param).toBe("messages[1].content");
    }
    for (const url of ["data:image/png,not-base64", "data:image/png;base64,@@@@", "data:image/png;base64,"]) {
      const error = await refusal(backend.chat({ model: "eyes", messages: look(url) }));
      expect(error.param).toBe("messages[1].content");
    }
    expect(fake.requests).toHaveLength(0);
  });

  it("reports an image sent to a model without vision as Ollama's refusal", async () => {
    const { backend } = await setup();
    const error = await backend
      .chat({ model: "plain", messages: look(`data:image/png;base64,${PNG_BASE64}`) })
      .catch((e: unknown) => e);
    expect(isGbtError(error, "INVALID_INPUT")).toBe(true);
    expect((error as Error).message).toContain("does not support vision");
  });
});

describe("Ollama backend: structured output and options", () => {
  const schema = {
    type: "object",
    properties: {
      name: { type: "string" },
      age: { type: "integer", minimum: 18 },
      tags: { type: "array", items: { type: "string", enum: ["a", "b"] } },
      ok: { type: "boolean" },
    },
    required: ["name", "age", "tags", "ok"],
  };

  it("sends json_schema as Ollama's format and answers JSON that fits it, whole and streamed", async () => {
    const { fake, backend } = await setup();
    const request = {
      model: "plain",
      messages: ask,
      responseFormat: { type: "json_schema" as const, name: "person", schema },
    };
    const whole = await backend.chat(request);
    const events = await drain(backend.chatStream(request));
    const streamed = events.flatMap((e) => (e.type === "delta" ? [e.text] : [])).join("");
    expect(events.filter((e) => e.type === "delta").length).toBeGreaterThan(1);
    for (const text of [whole.text, streamed]) {
      expect(JSON.parse(text)).toEqual({ name: "name", age: 18, tags: ["a"], ok: true });
    }
    expect(bodies(fake, "/api/chat").map((body) => body.format)).toEqual([schema, schema]);
  });

  it("sends json_object as format 'json' and text as no format", async () => {
    const { fake, backend } = await setup();
    const json = await backend.chat({
      model: "plain",
      messages: ask,
      responseFormat: { type: "json_object" },
    });
    expect(JSON.parse(json.text)).toEqual({ text: "Hello, world!" });
    await backend.chat({ model: "plain", messages: ask, responseFormat: { type: "text" } });
    const [first, second] = bodies(fake, "/api/chat");
    expect(first?.format).toBe("json");
    expect(second).not.toHaveProperty("format");
  });

  it("passes presence and frequency penalties as Ollama options", async () => {
    const { fake, backend } = await setup();
    await backend.chat({ model: "plain", messages: ask, presencePenalty: 0.5, frequencyPenalty: -0.25 });
    expect(bodies(fake, "/api/chat")[0]?.options).toEqual({
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
    });
  });
});

describe("Ollama backend: embeddings", () => {
  it("embeds each input through /api/embed, in order, with Ollama's prompt token count", async () => {
    const { fake, backend } = await setup();
    const result = await backend.embed?.({ model: "embedder", input: ["first text", "second"] });
    const answer = fake.requests.at(-1)?.sent[0] as { prompt_eval_count: number };
    expect(result?.embeddings).toEqual([textVector("first text", 8), textVector("second", 8)]);
    expect(result?.promptTokens).toBe(answer.prompt_eval_count);
    expect(result?.promptTokens).toBeGreaterThan(0);
    expect(bodies(fake, "/api/embed")[0]).toEqual({
      model: "embedder",
      input: ["first text", "second"],
      truncate: false,
    });
    const norm = Math.hypot(...(result?.embeddings[0] ?? []));
    expect(norm).toBeCloseTo(1, 6);
  });

  it("passes dimensions, and refuses more dimensions than the model has", async () => {
    const { fake, backend } = await setup();
    const short = await backend.embed?.({ model: "embedder", input: ["abc"], dimensions: 4 });
    expect(bodies(fake, "/api/embed")[0]).toMatchObject({ dimensions: 4 });
    expect(short?.embeddings[0]).toHaveLength(4);
    expect(Math.hypot(...(short?.embeddings[0] ?? []))).toBeCloseTo(1, 6);
    const error = await refusal(
      backend.embed?.({ model: "embedder", input: ["abc"], dimensions: 64 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ wireCode: "invalid_value", param: "dimensions" });
    expect(error.message).toContain("8 dimensions");
  });

  it("reports an input beyond the context as CONTEXT_LENGTH_EXCEEDED rather than embedding a prefix", async () => {
    const { backend } = await setup();
    const error = await backend
      .embed?.({ model: "embedder", input: ["x".repeat(200)] })
      .catch((e: unknown) => e);
    expect(isGbtError(error, "CONTEXT_LENGTH_EXCEEDED")).toBe(true);
  });

  it("reports an unknown model as MODEL_NOT_FOUND and a model that cannot embed as INVALID_INPUT", async () => {
    const { backend } = await setup();
    const missing = await backend.embed?.({ model: "nope", input: ["a"] }).catch((e: unknown) => e);
    expect(isGbtError(missing, "MODEL_NOT_FOUND")).toBe(true);
    const chatOnly = await backend.embed?.({ model: "plain", input: ["a"] }).catch((e: unknown) => e);
    expect(isGbtError(chatOnly, "INVALID_INPUT")).toBe(true);
  });

  it("reports a cancelled embed as INTERRUPTED", async () => {
    const { backend } = await setup();
    const error = await backend
      .embed?.({ model: "embedder", input: ["a"], signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    expect(isGbtError(error, "INTERRUPTED")).toBe(true);
  });
});

describe("Ollama backend: raw completions", () => {
  it("streams a raw prompt through /api/generate with raw: true and Ollama's counts", async () => {
    const { fake, backend } = await setup({ tokens: ["Once", " upon", " a time"] });
    const events = await drain(
      complete(backend, { model: "plain", prompt: "<s>Tell me", temperature: 0.1, seed: 3 }),
    );
    const final = fake.requests.at(-1)?.sent.at(-1) as Record<string, number>;
    expect(bodies(fake, "/api/generate")[0]).toMatchObject({
      model: "plain",
      prompt: "<s>Tell me",
      raw: true,
      stream: true,
      options: { temperature: 0.1, seed: 3 },
    });
    expect(events).toEqual([
      { type: "delta", text: "Once" },
      { type: "delta", text: " upon" },
      { type: "delta", text: " a time" },
      {
        type: "done",
        finishReason: "stop",
        usage: { promptTokens: final.prompt_eval_count, completionTokens: 3 },
        timings: expect.objectContaining({ source: "ollama:eval_duration", decodeTokens: 3 }),
      },
    ]);
  });

  it("ends with 'length' at maxTokens, and hangs up when the consumer stops reading", async () => {
    const { fake, backend } = await setup({ tokens: Array.from({ length: 20 }, () => "x"), tokenMs: 10 });
    const cut = await drain(complete(backend, { model: "plain", prompt: "go", maxTokens: 2 }));
    expect(cut.at(-1)).toMatchObject({
      type: "done",
      finishReason: "length",
      usage: { completionTokens: 2 },
    });
    for await (const event of complete(backend, { model: "plain", prompt: "go" })) {
      if (event.type === "delta") break;
    }
    await expect(fake.requests.at(-1)?.ended).resolves.toBe("disconnected");
  });

  it("reports an unknown model as MODEL_NOT_FOUND", async () => {
    const { backend } = await setup();
    const error = await drain(complete(backend, { model: "nope", prompt: "hi" })).catch((e: unknown) => e);
    expect(isGbtError(error, "MODEL_NOT_FOUND")).toBe(true);
  });
});

describe("Ollama backend: capabilities from /api/show", () => {
  it("fills each model's capabilities, context length and embedding length from /api/show", async () => {
    const { backend } = await setup({
      models: [
        { name: "qwen3:0.6b", capabilities: ["completion", "tools", "thinking"], contextLength: 40960 },
        { name: "llava", capabilities: ["completion", "vision"], details: { family: "clip" } },
        { name: "nomic-embed-text", capabilities: ["embedding"], embeddingLength: 768, contextLength: 8192 },
      ],
    });
    const models = await backend.listModels();
    expect(models.map((m) => [m.id, m.capabilities, m.contextLength])).toEqual([
      [
        "qwen3:0.6b",
        {
          chat: true,
          tools: true,
          jsonSchema: true,
          embeddings: false,
          vision: false,
          logprobs: false,
          completions: true,
          contextLength: 40960,
        },
        40960,
      ],
      [
        "llava:latest",
        {
          chat: true,
          tools: false,
          jsonSchema: true,
          embeddings: false,
          vision: true,
          logprobs: false,
          completions: true,
          contextLength: 2048,
        },
        2048,
      ],
      [
        "nomic-embed-text:latest",
        {
          chat: false,
          tools: false,
          jsonSchema: false,
          embeddings: true,
          vision: false,
          logprobs: false,
          completions: false,
          contextLength: 8192,
          embeddingDimensions: 768,
        },
        8192,
      ],
    ]);
  });

  it("shows each model once per digest, and counts a failed show as chat only until it succeeds", async () => {
    const failShow = ["broken"];
    const { fake, backend } = await setup({
      models: [{ name: "tiny", capabilities: ["completion", "tools"] }, { name: "broken" }],
      failShow,
    });
    const chatOnly = {
      chat: true,
      tools: false,
      jsonSchema: false,
      embeddings: false,
      vision: false,
      logprobs: false,
      completions: false,
    };
    const first = await backend.listModels();
    expect(first.find((m) => m.id === "broken:latest")?.capabilities).toEqual(chatOnly);
    expect(first.find((m) => m.id === "tiny:latest")?.capabilities?.tools).toBe(true);
    expect(bodies(fake, "/api/show").map((b) => b.model)).toEqual(["tiny:latest", "broken:latest"]);

    await backend.listModels();
    // tiny's answer is cached; broken's failure is not, so it is asked again.
    expect(bodies(fake, "/api/show").map((b) => b.model)).toEqual([
      "tiny:latest",
      "broken:latest",
      "broken:latest",
    ]);
    failShow.length = 0;
    const healed = await backend.listModels();
    expect(healed.find((m) => m.id === "broken:latest")?.capabilities).toMatchObject({
      chat: true,
      completions: true,
      jsonSchema: true,
    });
    await backend.listModels();
    expect(bodies(fake, "/api/show")).toHaveLength(4);
  });

  it("counts a model as chat only when Ollama lists no capabilities (Ollama before 0.6)", async () => {
    const { backend } = await setup({ models: [{ name: "old", capabilities: [], contextLength: 4096 }] });
    const [model] = await backend.listModels();
    expect(model?.capabilities).toEqual({
      chat: true,
      tools: false,
      jsonSchema: false,
      embeddings: false,
      vision: false,
      logprobs: false,
      completions: false,
      contextLength: 4096,
    });
  });
});
