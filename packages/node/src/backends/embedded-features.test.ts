import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpError, isGbtError } from "@gbt/protocol";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { generateTestModel } from "../test-model/test-model.js";
import { createEmbeddedBackend } from "./embedded.js";
import type {
  Backend,
  ChatMessage,
  ChatRequest,
  ChatStreamEvent,
  CompletionRequest,
  ToolDefinition,
} from "./types.js";

const MODEL = "tiny";
const CONTEXT = 2048;
const messages: ChatMessage[] = [
  { role: "system", content: "You are a test." },
  { role: "user", content: "What is the weather in Paris?" },
];

// Bounded schemas: a random-weight model fills whatever the grammar allows, so every value is bounded.
const weatherArgs = z.object({
  city: z.enum(["Paris", "Rome", "Oslo"]),
  unit: z.enum(["celsius", "fahrenheit"]),
  days: z.number().int().min(1).max(7),
  detailed: z.boolean(),
  note: z.string().max(12),
});
const alarmArgs = z.object({ hour: z.number().int().min(0).max(23), label: z.string().max(8) });
const tools: ToolDefinition[] = [
  { name: "get_weather", description: "Weather forecast", parameters: z.toJSONSchema(weatherArgs) },
  { name: "set_alarm", description: "Sets an alarm", parameters: z.toJSONSchema(alarmArgs) },
];
const argsOf: Record<string, z.ZodType> = { get_weather: weatherArgs, set_alarm: alarmArgs };

let dir: string;
let modelPath: string;
let reference: LlamaModel;
let backend: Backend;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gbt-embedded-features-"));
  modelPath = (await generateTestModel(join(dir, `${MODEL}.gguf`))).path;
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1 });
  reference = await llama.loadModel({ modelPath });
  // Tool documentation is long for a model whose tokens are single characters: room beyond its trained 512.
  backend = createEmbeddedBackend({
    models: [{ id: MODEL, path: modelPath }],
    threads: 1,
    capacity: 2,
    contextSize: CONTEXT,
  });
});

afterAll(async () => {
  await backend?.close();
  await reference?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function collect(stream: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const events: ChatStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const request = (extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: MODEL, messages, ...extra });

function complete(on: Backend, completion: CompletionRequest): AsyncIterable<ChatStreamEvent> {
  if (!on.completeStream) throw new Error("the embedded backend has no completeStream");
  return on.completeStream(completion);
}

function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

describe("embedded backend: tool calls", () => {
  it("streams a required call as tool_call events (index, id and name first), schema-valid, ending with tool_calls", async () => {
    for (const seed of [1, 2, 3]) {
      const events = await collect(
        backend.chatStream(request({ tools, toolChoice: "required", seed, temperature: 1, maxTokens: 200 })),
      );
      const [first, ...rest] = events;
      expect(first).toMatchObject({
        type: "tool_call",
        index: 0,
        id: expect.stringMatching(/^call_/),
        arguments: "",
      });
      if (first?.type !== "tool_call") throw new Error("no tool_call first");
      expect(["get_weather", "set_alarm"]).toContain(first.name);
      const fragments = rest.filter((event) => event.type === "tool_call");
      expect(fragments.length).toBeGreaterThan(1);
      for (const fragment of fragments) {
        expect(fragment).toEqual({ type: "tool_call", index: 0, arguments: expect.any(String) });
      }
      expect(events.some((event) => event.type === "delta")).toBe(false);
      const done = events.at(-1);
      expect(done).toMatchObject({ type: "done", finishReason: "tool_calls" });
      const args = JSON.parse(fragments.map((fragment) => fragment.arguments).join(""));
      expect(() => argsOf[first.name as string]?.parse(args)).not.toThrow();
    }
  });

  it("calls the named function, and whole chat() answers carry the call", async () => {
    const result = await backend.chat(
      request({ tools, toolChoice: { name: "set_alarm" }, seed: 7, temperature: 1, maxTokens: 200 }),
    );
    expect(result.finishReason).toBe("tool_calls");
    expect(result.text).toBe("");
    expect(result.toolCalls).toHaveLength(1);
    const call = result.toolCalls?.[0];
    expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), name: "set_alarm" });
    expect(alarmArgs.parse(JSON.parse(call?.arguments ?? ""))).toBeTruthy();
    expect(result.usage.completionTokens).toBeGreaterThan(5);
  });

  it("refuses a tool_choice naming a function the request does not have", async () => {
    const error = await errorOf(backend.chat(request({ tools, toolChoice: { name: "nope" } })));
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ wireCode: "invalid_value", param: "tool_choice" });
  });

  it("answers in text with tool_choice none, and in text or calls with auto", async () => {
    const none = await backend.chat(request({ tools, toolChoice: "none", seed: 1, maxTokens: 12 }));
    expect(none).toMatchObject({ finishReason: "length", usage: { completionTokens: 12 } });
    expect(none.toolCalls).toBeUndefined();
    expect(none.text.length).toBeGreaterThan(0);

    const auto = await backend.chat(request({ tools, seed: 1, maxTokens: 12 }));
    expect(["length", "stop", "tool_calls"]).toContain(auto.finishReason);
    if (auto.finishReason === "tool_calls") expect(auto.toolCalls?.length).toBeGreaterThan(0);
    else expect(auto.text.length).toBeGreaterThan(0);
    expect(auto.usage.promptTokens).toBeGreaterThan(none.usage.promptTokens - 200);
    expect(auto.usage.completionTokens).toBeGreaterThan(0);
  });

  it("accepts a history with an assistant tool call and its result, and answers it", async () => {
    const history: ChatMessage[] = [
      ...messages,
      {
        role: "assistant",
        content: "",
        toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
      },
      { role: "tool", toolCallId: "call_1", name: "get_weather", content: "sunny, 21 C" },
    ];
    const withResult = await backend.countPromptTokens?.({ model: MODEL, messages: history });
    const without = await backend.countPromptTokens?.({ model: MODEL, messages });
    // The call and its result are in the prompt.
    expect(withResult).toBeGreaterThan((without ?? 0) + "sunny, 21 C".length);
    for (const toolChoice of ["none", "required", "auto"] as const) {
      const result = await backend.chat(
        request({ messages: history, tools, toolChoice, seed: 2, maxTokens: 300 }),
      );
      expect(result.usage.promptTokens).toBeGreaterThan(withResult ?? 0);
      expect(result.usage.completionTokens).toBeGreaterThan(0);
      if (toolChoice === "required") expect(result.finishReason).toBe("tool_calls");
    }
  });

  it("refuses tool parameters the grammar cannot enforce, naming the tool's param", async () => {
    const bad: ToolDefinition[] = [
      tools[0] as ToolDefinition,
      {
        name: "lookup",
        parameters: { type: "object", properties: { q: { type: "string", pattern: "^a+$" } } },
      },
    ];
    const error = await errorOf(backend.chat(request({ tools: bad, toolChoice: "required" })));
    expect(isGbtError(error, "INVALID_INPUT")).toBe(true);
    expect(error).toMatchObject({ param: "tools[1].function.parameters" });
    expect((error as Error).message).toMatch(/pattern/);
  });
});

describe("embedded backend: response formats", () => {
  it("gives schema-valid JSON for json_schema", async () => {
    const answer = z.object({
      mood: z.enum(["happy", "sad", "calm"]),
      score: z.number().int().min(0).max(10),
      tags: z.array(z.enum(["a", "b", "c"])).max(3),
      ok: z.boolean(),
      title: z.string().max(16),
    });
    for (const seed of [1, 2, 3]) {
      const result = await backend.chat(
        request({
          responseFormat: { type: "json_schema", name: "answer", schema: z.toJSONSchema(answer) },
          seed,
          temperature: 1,
          maxTokens: 300,
        }),
      );
      expect(result.finishReason).toBe("stop");
      expect(answer.parse(JSON.parse(result.text))).toBeTruthy();
    }
  });

  it("gives parseable JSON objects for json_object, without the grammar's trailing whitespace", async () => {
    // The JSON grammar bounds nothing: a random model may write one string for ever. Those that end, parse.
    const ended: string[] = [];
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const result = await backend.chat(
        request({ responseFormat: { type: "json_object" }, seed, temperature: 1.5, maxTokens: 300 }),
      );
      if (result.finishReason !== "stop") continue;
      ended.push(result.text);
      expect(result.text).toBe(result.text.trim());
      const value: unknown = JSON.parse(result.text);
      expect(value).toBeTypeOf("object");
      expect(Array.isArray(value)).toBe(false);
    }
    expect(ended.some((text) => text.length > 10)).toBe(true);
  });

  it("refuses a schema the grammar cannot enforce as invalid_value naming response_format.json_schema.schema", async () => {
    for (const schema of [
      { type: "string", pattern: "^[a-z]+$" },
      { type: "object", properties: { a: { allOf: [{ type: "string" }] } } },
      { type: "number", minimum: 0 },
      { $ref: "https://example.com/schema.json" },
    ]) {
      const error = await errorOf(
        backend.chat(request({ responseFormat: { type: "json_schema", name: "x", schema } })),
      );
      expect(isGbtError(error, "INVALID_INPUT")).toBe(true);
      expect(error).toMatchObject({ wireCode: "invalid_value", param: "response_format.json_schema.schema" });
    }
  });
});

describe("embedded backend: embeddings", () => {
  it("returns one unit vector per input, in order, of the model's length, equal for equal inputs", async () => {
    const inputs = ["hello world", "something else", "hello world"];
    const result = await backend.embed?.({ model: MODEL, input: inputs });
    if (!result) throw new Error("no embed");
    expect(result.embeddings).toHaveLength(3);
    for (const vector of result.embeddings) {
      expect(vector).toHaveLength(128);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
    }
    expect(result.embeddings[2]).toEqual(result.embeddings[0]);
    expect(result.embeddings[1]).not.toEqual(result.embeddings[0]);
    // Each input as llama.cpp evaluates it: its tokens after the beginning-of-sequence token.
    const expected = inputs.reduce((sum, text) => sum + reference.tokenize(text).length + 1, 0);
    expect(result.promptTokens).toBe(expected);
  });

  it("truncates to dimensions and re-normalises, and refuses more dimensions than the model has", async () => {
    const full = await backend.embed?.({ model: MODEL, input: ["truncate me"] });
    const short = await backend.embed?.({ model: MODEL, input: ["truncate me"], dimensions: 16 });
    const vector = short?.embeddings[0] ?? [];
    expect(vector).toHaveLength(16);
    expect(Math.hypot(...vector)).toBeCloseTo(1, 6);
    // The same direction as the full vector's first 16 components.
    const head = (full?.embeddings[0] ?? []).slice(0, 16);
    const scale = Math.hypot(...head);
    vector.forEach((value, i) => {
      expect(value).toBeCloseTo((head[i] ?? 0) / scale, 9);
    });

    const error = await errorOf(
      backend.embed?.({ model: MODEL, input: ["x"], dimensions: 129 }) ?? Promise.resolve(),
    );
    expect(error).toMatchObject({ wireCode: "invalid_value", param: "dimensions" });
  });

  it("stops between inputs when aborted", async () => {
    const error = await errorOf(
      backend.embed?.({ model: MODEL, input: ["a", "b"], signal: AbortSignal.abort() }) ?? Promise.resolve(),
    );
    expect(isGbtError(error, "INTERRUPTED")).toBe(true);
  });

  it("advertises its capabilities, embedding length included, without loading the model", async () => {
    const fresh = createEmbeddedBackend({ models: [{ id: MODEL, path: modelPath }], threads: 1 });
    try {
      const [model] = await fresh.listModels();
      expect(model?.details).toMatchObject({ loaded: false });
      expect(model?.capabilities).toEqual({
        chat: true,
        tools: true,
        jsonSchema: true,
        embeddings: true,
        vision: false,
        logprobs: false,
        completions: true,
        contextLength: 512,
        embeddingDimensions: 128,
      });
    } finally {
      await fresh.close();
    }
  });
});

describe("embedded backend: raw completions", () => {
  it("streams the raw prompt's continuation in deltas and stops at maxTokens with length", async () => {
    const prompt = "Once upon a time";
    const events = await collect(complete(backend, { model: MODEL, prompt, maxTokens: 20, seed: 3 }));
    const deltas = events.filter((event) => event.type === "delta");
    expect(deltas.length).toBeGreaterThan(1);
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", finishReason: "length", usage: { completionTokens: 20 } });
    // No chat template: the prompt is its own tokens after the beginning-of-sequence token.
    if (done?.type !== "done") throw new Error("no done");
    expect(done.usage.promptTokens).toBe(reference.tokenize(prompt).length + 1);
    const text = deltas.map((event) => (event.type === "delta" ? event.text : "")).join("");
    expect(reference.tokenize(text)).toHaveLength(20);
  });

  it("honours seed and stop strings as chat does", async () => {
    const settings = { model: MODEL, prompt: "abc", maxTokens: 40, temperature: 1, seed: 11 };
    const first = await collect(complete(backend, settings));
    const again = await collect(complete(backend, settings));
    const textOf = (events: ChatStreamEvent[]) =>
      events.map((event) => (event.type === "delta" ? event.text : "")).join("");
    expect(textOf(again)).toBe(textOf(first));
    const full = textOf(first);
    const stop = full.slice(8, 10);
    const stopped = await collect(complete(backend, { ...settings, stop: [stop] }));
    expect(textOf(stopped)).toBe(full.slice(0, full.indexOf(stop)));
    expect(stopped.at(-1)).toMatchObject({ type: "done", finishReason: "stop" });
  });
});

describe("embedded backend: abort frees the slot on every path", () => {
  let single: Backend;
  beforeAll(() => {
    single = createEmbeddedBackend({
      models: [{ id: MODEL, path: modelPath }],
      threads: 1,
      capacity: 1,
      contextSize: CONTEXT,
    });
  });
  afterAll(async () => {
    await single.close();
  });

  const paths: [string, (signal: AbortSignal) => AsyncIterable<ChatStreamEvent>][] = [
    ["a raw completion", (signal) => complete(single, { model: MODEL, prompt: "x", maxTokens: 400, signal })],
    [
      "a json_schema answer",
      (signal) =>
        single.chatStream(
          request({
            responseFormat: {
              type: "json_schema",
              name: "s",
              schema: { type: "array", items: { type: "string" }, minItems: 8 },
            },
            maxTokens: 400,
            temperature: 1,
            signal,
          }),
        ),
    ],
    [
      "a forced tool call",
      (signal) =>
        single.chatStream(
          request({
            tools: [
              { name: "echo", parameters: { type: "object", properties: { text: { type: "string" } } } },
            ],
            toolChoice: "required",
            maxTokens: 400,
            temperature: 1,
            seed: 1,
            signal,
          }),
        ),
    ],
    ["an auto tool answer", (signal) => single.chatStream(request({ tools, maxTokens: 400, signal }))],
  ];

  it.each(paths)("aborting %s mid-stream ends it with abort and frees the slot", async (_name, start) => {
    const controller = new AbortController();
    const events: ChatStreamEvent[] = [];
    for await (const event of start(controller.signal)) {
      events.push(event);
      if (events.length === 3) controller.abort();
    }
    expect(events.length).toBeGreaterThan(3);
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "abort" });
    const next = await single.chat(request({ maxTokens: 2 }));
    expect(next.usage.completionTokens).toBe(2);
  });
});

describe("presence and frequency penalties", () => {
  it("change what the same seed samples, and leave it alone at 0", async () => {
    const sample = async (extra: Partial<ChatRequest>) =>
      (await backend.chat(request({ maxTokens: 48, temperature: 1, seed: 7, ...extra }))).text;
    const plain = await sample({});
    expect(await sample({ presencePenalty: 0, frequencyPenalty: 0 })).toBe(plain);
    const penalized = await sample({ presencePenalty: 1.5, frequencyPenalty: 1.5 });
    expect(penalized).not.toBe(plain);
    expect(await sample({ presencePenalty: 1.5, frequencyPenalty: 1.5 })).toBe(penalized);
  });
});
