/**
 * The node's OpenAI API beyond plain chat, with the official `openai` client against a real node
 * server on loopback: tool calls whole and streamed (the client's own stream accumulator must
 * rebuild them), a tool round trip whose history reaches the backend, embeddings (float and the
 * client's default base64, decoded by the client), legacy completions, the Responses API whole and
 * streamed, and the specific 400 of each malformed or unservable request, before any work is done.
 */
import OpenAI from "openai";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ModelCapabilities } from "../backends/types.js";
import {
  createScriptedBackend,
  SCRIPTED_TOOL_ARGUMENTS,
  type ScriptedBackend,
} from "../testing/scripted-backend.js";
import { type NodeServer, startNodeServer } from "./node-server.js";

const logger = pino({ level: "silent" });
let server: NodeServer | undefined;
let backend: ScriptedBackend;

const ALL: ModelCapabilities = {
  chat: true,
  tools: true,
  jsonSchema: true,
  embeddings: true,
  vision: false,
  logprobs: false,
  completions: true,
};

async function node(capabilities: ModelCapabilities = ALL): Promise<OpenAI> {
  backend = createScriptedBackend({ capabilities, tokens: ["Hel", "lo", "!"], defaultMaxTokens: 3 });
  server = await startNodeServer({ backend, logger, capacity: 4 });
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
}

afterEach(async () => {
  await server?.close(100);
  server = undefined;
});

const weather: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 20 } },
      required: ["city"],
    },
  },
};
const time: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: "function",
  function: { name: "get_time", parameters: { type: "object", properties: {} } },
};

async function post(
  path: string,
  body: unknown,
): Promise<{
  status: number;
  error: { param: string | null; code: string; message: string };
  headers: Headers;
}> {
  const response = await fetch(`${server?.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { error: { param: string | null; code: string; message: string } };
  return { status: response.status, error: json.error, headers: response.headers };
}

describe("tool calls", () => {
  it("whole: message.tool_calls and finish_reason tool_calls; a named choice calls that function", async () => {
    const client = await node();
    const answer = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "What time is it?" }],
      tools: [weather, time],
      tool_choice: { type: "function", function: { name: "get_time" } },
    });
    const choice = answer.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    expect(choice?.message.content).toBeNull();
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type).toBe("function");
    expect(call?.id).toMatch(/^call_/);
    expect(call?.type === "function" && call.function).toEqual({
      name: "get_time",
      arguments: '{"scripted":true}',
    });
    expect(backend.received.at(-1)?.toolChoice).toEqual({ name: "get_time" });
    expect(backend.received.at(-1)?.tools?.map((t) => t.name)).toEqual(["get_weather", "get_time"]);
  });

  it("streamed: the first delta names the call, the rest are argument fragments the client reassembles", async () => {
    const client = await node();
    const stream = client.chat.completions.stream({
      model: "scripted",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: "required",
    });
    const deltas: unknown[] = [];
    stream.on("chunk", (chunk) => {
      const calls = chunk.choices[0]?.delta.tool_calls;
      if (calls) deltas.push(...calls);
    });
    const final = await stream.finalChatCompletion();
    expect(deltas).toHaveLength(SCRIPTED_TOOL_ARGUMENTS.length);
    expect(deltas[0]).toMatchObject({
      index: 0,
      type: "function",
      function: { name: "get_weather", arguments: SCRIPTED_TOOL_ARGUMENTS[0] },
    });
    expect((deltas[0] as { id: string }).id).toMatch(/^call_/);
    expect(deltas[1]).toEqual({ index: 0, function: { arguments: SCRIPTED_TOOL_ARGUMENTS[1] } });
    const choice = final.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    const call = choice?.message.tool_calls?.[0];
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({ scripted: true });
  });

  it("a round trip: the assistant's call and the tool's result reach the backend as such", async () => {
    const client = await node();
    const answer = await client.chat.completions.create({
      model: "scripted",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18°C, sunny" },
      ],
      tools: [weather],
      tool_choice: "none",
    });
    expect(answer.choices[0]?.message.content).toBe("Hello!");
    const history = backend.received.at(-1)?.messages;
    expect(history?.[1]).toEqual({
      role: "assistant",
      content: "",
      toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
    });
    expect(history?.[2]).toEqual({
      role: "tool",
      content: "18°C, sunny",
      toolCallId: "call_1",
      name: "get_weather",
    });
  });

  it("refuses what would be answered wrongly, each with its own param, before any generation", async () => {
    await node();
    const user = { role: "user", content: "hi" };
    const cases: Array<[unknown, string, string]> = [
      [
        { messages: [user, { role: "tool", tool_call_id: "call_x", content: "r" }] },
        "messages[1].tool_call_id",
        "no earlier assistant message",
      ],
      [
        {
          messages: [user],
          tools: [{ type: "function", function: { name: "f", parameters: { type: "objekt" } } }],
        },
        "tools[0].function.parameters",
        "not a usable JSON Schema",
      ],
      [
        { messages: [user], tools: [{ type: "function", function: { name: "bad name!" } }] },
        "tools[0].function.name",
        "name",
      ],
      [{ messages: [user], tools: [weather, weather] }, "tools[1].function", "used twice"],
      [
        { messages: [user], tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } },
        "tool_choice",
        "no tool named",
      ],
      [
        {
          messages: [user],
          response_format: { type: "json_schema", json_schema: { name: "x", schema: { properties: [] } } },
        },
        "response_format.json_schema.schema",
        "not a usable JSON Schema",
      ],
      [{ messages: [user], n: 3 }, "n", "one choice"],
      [{ messages: [user], top_logprobs: 3 }, "top_logprobs", "logprobs"],
    ];
    for (const [extra, param, words] of cases) {
      const { status, error } = await post("/v1/chat/completions", {
        model: "scripted",
        ...(extra as object),
      });
      expect({ param, status }).toEqual({ param: error.param, status: 400 });
      expect(error.message).toContain(words);
    }
    expect(backend.received).toHaveLength(0);
  });

  it("a model without tool calling refuses tools with unsupported_parameter, but answers tool_choice none", async () => {
    const client = await node({ ...ALL, tools: false });
    const refused = await post("/v1/chat/completions", {
      model: "scripted",
      messages: [{ role: "user", content: "hi" }],
      tools: [weather],
    });
    expect(refused.status).toBe(400);
    expect(refused.error).toMatchObject({ code: "unsupported_parameter", param: "tools" });
    const answer = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "hi" }],
      tools: [weather],
      tool_choice: "none",
    });
    expect(answer.choices[0]?.message.content).toBe("Hello!");
  });
});

describe("embeddings", () => {
  it("float and base64 (the client's default) give the same vectors, one per input in order, billed by input tokens", async () => {
    const client = await node();
    const input = ["first text", "second, longer text"];
    const floats = await client.embeddings.create({ model: "scripted", input, encoding_format: "float" });
    const decoded = await client.embeddings.create({ model: "scripted", input });
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.data[0]?.embedding).toHaveLength(8);
    for (const [i, d] of decoded.data.entries()) {
      const expected = floats.data[i]?.embedding as number[];
      for (const [j, x] of d.embedding.entries()) expect(x).toBeCloseTo(expected[j] as number, 6);
    }
    expect(floats.data[0]?.embedding).not.toEqual(floats.data[1]?.embedding);
    expect(floats.usage).toEqual({ prompt_tokens: 3 + 5, total_tokens: 8 });
    const short = await client.embeddings.create({
      model: "scripted",
      input: "x",
      dimensions: 4,
      encoding_format: "float",
    });
    expect(short.data[0]?.embedding).toHaveLength(4);
  });

  it("refuses an oversized batch, an empty string, token ids, and a model that does not embed", async () => {
    await node();
    for (const [input, words] of [
      [Array.from({ length: 2049 }, () => "x"), "at most 2048"],
      ["", "empty"],
      [[1, 2, 3], "token-id"],
    ] as const) {
      const { status, error } = await post("/v1/embeddings", { model: "scripted", input });
      expect(status).toBe(400);
      expect(error.param).toMatch(/^input/);
      expect(error.message).toContain(words);
    }
    expect(backend.embedded).toHaveLength(0);
    await server?.close(100);
    await node({ ...ALL, embeddings: false });
    const { status, error } = await post("/v1/embeddings", { model: "scripted", input: "x" });
    expect(status).toBe(400);
    expect(error.code).toBe("unsupported_parameter");
  });
});

describe("completions", () => {
  it("whole and streamed, with echo, and usage when asked for", async () => {
    const client = await node();
    const whole = await client.completions.create({ model: "scripted", prompt: "Say: ", echo: true });
    expect(whole.object).toBe("text_completion");
    expect(whole.choices[0]?.text).toBe("Say: Hello!");
    expect(whole.choices[0]?.finish_reason).toBe("length");
    expect(whole.usage?.completion_tokens).toBe(3);
    const stream = await client.completions.create({
      model: "scripted",
      prompt: "Say: ",
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe("Hello!");
    expect(usage?.completion_tokens).toBe(3);
    expect(backend.received.at(-1)?.messages).toEqual([{ role: "user", content: "Say: " }]);
  });

  it("refuses n > 1, several prompts and logprobs by name", async () => {
    await node();
    for (const [extra, param] of [
      [{ n: 2 }, "n"],
      [{ prompt: ["a", "b"] }, "prompt"],
      [{ logprobs: 2 }, "logprobs"],
    ] as const) {
      const { status, error } = await post("/v1/completions", { model: "scripted", prompt: "x", ...extra });
      expect({ status, param: error.param }).toEqual({ status: 400, param });
    }
  });
});

describe("responses", () => {
  it("whole: output_text, usage in the Responses shape, the request's settings echoed", async () => {
    const client = await node();
    const response = await client.responses.create({
      model: "scripted",
      instructions: "Be brief.",
      input: "Hi",
      max_output_tokens: 2,
      store: false,
    });
    expect(response.object).toBe("response");
    expect(response.output_text).toBe("Hello");
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(response.usage?.output_tokens).toBe(2);
    expect(backend.received.at(-1)?.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
  });

  it("streamed: OpenAI's event sequence, numbered, with one delta per token and the final response", async () => {
    const client = await node();
    const stream = await client.responses.create({ model: "scripted", input: "Hi", stream: true });
    const types: string[] = [];
    const sequence: number[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === "response.output_text.delta") text += event.delta;
      // The scripted backend always stops at its token limit: the response ends incomplete.
      if (event.type === "response.incomplete") completed = event.response;
    }
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
      "response.incomplete",
    ]);
    expect(sequence).toEqual(types.map((_, i) => i));
    expect(text).toBe("Hello!");
    const message = completed?.output[0] as { content: Array<{ text: string }> } | undefined;
    expect(message?.content[0]?.text).toBe("Hello!");
    expect(completed?.usage?.output_tokens).toBe(3);
  });

  it("function tools: a function_call output item, and its output sent back as an item", async () => {
    const client = await node();
    const first = await client.responses.create({
      model: "scripted",
      input: "Weather in Paris?",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: weather.function.parameters ?? null,
          strict: false,
        },
      ],
      tool_choice: "required",
    });
    const call = first.output.find((item) => item.type === "function_call");
    expect(call).toMatchObject({
      type: "function_call",
      name: "get_weather",
      arguments: '{"scripted":true}',
    });
    const callId = (call as { call_id: string }).call_id;
    const second = await client.responses.create({
      model: "scripted",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: callId, name: "get_weather", arguments: '{"scripted":true}' },
        { type: "function_call_output", call_id: callId, output: "18°C" },
      ],
    });
    expect(second.output_text).toBe("Hello!");
    expect(backend.received.at(-1)?.messages.at(-1)).toEqual({
      role: "tool",
      content: "18°C",
      toolCallId: callId,
      name: "get_weather",
    });
  });

  it("refuses stored state and hosted tools by name", async () => {
    await node();
    for (const [extra, param] of [
      [{ previous_response_id: "resp_1" }, "previous_response_id"],
      [{ store: true }, "store"],
      [{ tools: [{ type: "web_search" }] }, "tools[0].type"],
      [{ input: [{ type: "function_call_output", call_id: "nope", output: "x" }] }, "input[0].call_id"],
      [{ text: { format: { type: "json_schema", name: "x", schema: { type: 7 } } } }, "text.format.schema"],
    ] as const) {
      const { status, error, headers } = await post("/v1/responses", {
        model: "scripted",
        input: "x",
        ...extra,
      });
      expect({ status, param: error.param }).toEqual({ status: 400, param });
      expect(headers.get("x-request-id")).toBeTruthy();
    }
    expect(backend.received).toHaveLength(0);
  });
});

describe("capabilities and request ids", () => {
  it("GET /v1/models lists what each model can do; every answer carries x-request-id", async () => {
    const client = await node();
    const models = await client.models.list();
    expect((models.data[0] as unknown as { capabilities: ModelCapabilities }).capabilities).toEqual(ALL);
    const raw = await client.chat.completions
      .create({ model: "scripted", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    expect(raw.response.headers.get("x-request-id")).toBe(raw.data.id);
    const health = await fetch(`${server?.url}/healthz`);
    expect(health.headers.get("x-request-id")).toBeTruthy();
  });
});
