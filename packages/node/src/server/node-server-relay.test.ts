/**
 * A node in front of an OpenAI-compatible server passes the whole request through and its answer
 * back: with the official `openai` client, a tool-calling round trip (whole and streamed, the
 * tool-call deltas as OpenAI streams them), response_format and fields gbt has no name for reach
 * the server (the fake records what it received), and the backend's refusal keeps its status. A
 * backend that cannot honour such a field answers a 400 naming it instead of dropping it.
 */
import OpenAI from "openai";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAICompatibleBackend } from "../backends/openai-compatible.js";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "../testing/fake-openai-server.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, startNodeServer } from "./node-server.js";

const logger = pino({ level: "silent" });
let fake: FakeOpenAIServer | undefined;
let server: NodeServer | undefined;

const weather: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

async function relayed(): Promise<OpenAI> {
  fake = await startFakeOpenAIServer({ models: ["tiny"] });
  server = await startNodeServer({
    backend: createOpenAICompatibleBackend({ baseURL: fake.url }),
    logger,
    capacity: 4,
  });
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
}

const received = (index = -1) =>
  fake?.requests.filter((r) => r.path.endsWith("/chat/completions")).at(index)?.body as Record<
    string,
    unknown
  >;

afterEach(async () => {
  await server?.close(100);
  await fake?.close();
  server = undefined;
  fake = undefined;
});

describe("the OpenAI request passed through to an OpenAI-compatible backend", () => {
  it("a whole tool-calling round trip: the call, the tool's result, the answer", async () => {
    const client = await relayed();
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "Weather in Paris?" },
    ];
    const first = await client.chat.completions.create({
      model: "tiny",
      messages,
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      metadata: { team: "ci" },
      user: "alice",
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    expect(call?.type).toBe("function");
    expect(call?.type === "function" ? call.function : undefined).toEqual({
      name: "get_weather",
      arguments: '{"city":"Paris"}',
    });
    // Everything the consumer sent reached the server, gbt's unknowns included.
    expect(received()).toMatchObject({
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      metadata: { team: "ci" },
      user: "alice",
    });
    messages.push(first.choices[0]?.message as OpenAI.Chat.Completions.ChatCompletionMessageParam);
    messages.push({ role: "tool", tool_call_id: call?.id ?? "", content: '{"celsius":21}' });
    const second = await client.chat.completions.create({ model: "tiny", messages, tools: [weather] });
    expect(second.choices[0]?.message.content).toBe("Hello, world!");
    expect(second.choices[0]?.finish_reason).toBe("stop");
    const sent = received().messages as Record<string, unknown>[];
    expect(sent.map((message) => message.role)).toEqual(["user", "assistant", "tool"]);
    expect(sent[2]).toMatchObject({ tool_call_id: call?.id, content: '{"celsius":21}' });
    expect(sent[1]?.tool_calls).toEqual(first.choices[0]?.message.tool_calls);
  });

  it("streams tool calls as OpenAI does: index, id and name first, then argument fragments", async () => {
    const client = await relayed();
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Weather?" }],
      tools: [weather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      stream: true,
    });
    const fragments: string[] = [];
    let header: unknown;
    let finish: string | null | undefined;
    let usageChunks = 0;
    for await (const chunk of stream) {
      if (chunk.usage) usageChunks += 1;
      const delta = chunk.choices[0]?.delta;
      for (const call of delta?.tool_calls ?? []) {
        if (call.id !== undefined) header = { index: call.index, id: call.id, name: call.function?.name };
        fragments.push(call.function?.arguments ?? "");
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(header).toMatchObject({ index: 0, name: "get_weather" });
    expect(fragments.length).toBeGreaterThanOrEqual(3);
    expect(fragments.join("")).toBe('{"city":"Paris"}');
    expect(finish).toBe("tool_calls");
    // The node asked for usage (its receipt needs it) but the consumer did not: none reached them.
    expect(received()).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(usageChunks).toBe(0);
  });

  it("passes response_format and logprobs on, and the consumer's usage chunk when asked for", async () => {
    const client = await relayed();
    const format = {
      type: "json_schema" as const,
      json_schema: {
        name: "city",
        strict: true,
        schema: { type: "object", properties: { name: { type: "string" } } },
      },
    };
    await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      response_format: format,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(received()).toMatchObject({ response_format: format, logprobs: true, top_logprobs: 2 });
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined;
    let text = "";
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(text).toBe("Hello, world!");
    expect(usage?.completion_tokens).toBe(4);
  });

  it("keeps the backend's refusal: an unknown model is its 404, a missing messages array the node's 400", async () => {
    const client = await relayed();
    const unknown = await client.chat.completions
      .create({ model: "nope", messages: [{ role: "user", content: "hi" }] })
      .catch((error: unknown) => error);
    expect((unknown as InstanceType<typeof OpenAI.APIError>).status).toBe(404);
    const response = await fetch(`${server?.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny" }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe("messages");
  });
});

describe("a backend that cannot honour a field says so", () => {
  // The scripted model says nothing of its capabilities: chat only.
  it.each([
    ["tools", { tools: [weather] }, "does not support on this node's embedded backend"],
    [
      "response_format",
      { response_format: { type: "json_object" } },
      "does not support on this node's embedded backend",
    ],
    ["logprobs", { logprobs: true }, "does not support on this node's embedded backend"],
    [
      "messages[0].content",
      {
        messages: [
          {
            role: "user",
            content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }],
          },
        ],
      },
      "image inputs",
    ],
    ["n", { n: 3 }, "one choice per request"],
  ])("%s is a 400 naming it, never silently dropped", async (param, extra, words) => {
    server = await startNodeServer({ backend: createScriptedBackend(), logger, capacity: 1 });
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "hi" }], ...extra }),
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("x-request-id")).toBeTruthy();
    const { error } = (await response.json()) as { error: { param: string; message: string; code: string } };
    expect(error.param).toBe(param);
    expect(error.message).toContain(words);
    expect(error.code).toBe(param === "n" ? "invalid_value" : "unsupported_parameter");
  });

  it("tools with tool_choice none are no tools at all: answered", async () => {
    server = await startNodeServer({ backend: createScriptedBackend(), logger, capacity: 1 });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "hi" }],
      tools: [weather],
      tool_choice: "none",
    });
    expect(answer.choices[0]?.finish_reason).not.toBe("tool_calls");
  });
});
