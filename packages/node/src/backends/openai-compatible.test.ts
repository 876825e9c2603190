import { createServer } from "node:net";
import { isGbtError } from "@gbt/protocol";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type FakeOpenAIServer,
  type FakeOpenAIServerOptions,
  startFakeOpenAIServer,
} from "../testing/fake-openai-server.js";
import { createOpenAICompatibleBackend, type OpenAICompatibleBackendOptions } from "./openai-compatible.js";
import type { Backend, ChatStreamEvent } from "./types.js";

const fakes: FakeOpenAIServer[] = [];
const backends: Backend[] = [];

afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function setup(
  options: FakeOpenAIServerOptions = {},
  backendOptions: Partial<OpenAICompatibleBackendOptions> = {},
) {
  const fake = await startFakeOpenAIServer(options);
  fakes.push(fake);
  const backend = createOpenAICompatibleBackend({ baseURL: fake.url, ...backendOptions });
  backends.push(backend);
  return { fake, backend };
}

async function drain(stream: AsyncIterable<ChatStreamEvent>) {
  const events: ChatStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

const hello = [{ role: "user" as const, content: "Say hello to the world" }];
const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe("OpenAI-compatible backend", () => {
  it("streams the tokens, then the server's usage and llama.cpp timings", async () => {
    const { fake, backend } = await setup({ tokens: ["Hel", "lo", " world"], promptMs: 30, tokenMs: 10 });
    const events = await drain(backend.chatStream({ model: "tiny", messages: hello }));
    expect(events.slice(0, 3)).toEqual([
      { type: "delta", text: "Hel" },
      { type: "delta", text: "lo" },
      { type: "delta", text: " world" },
    ]);
    const usageChunk = fake.requests.at(-1)?.sent.at(-1) as {
      choices: unknown[];
      usage: Record<string, number>;
    };
    expect(usageChunk.choices).toEqual([]);
    expect(events[3]).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: usageChunk.usage.prompt_tokens, completionTokens: 3 },
      timings: {
        promptMs: 30,
        decodeMs: 30,
        promptTokens: usageChunk.usage.prompt_tokens,
        decodeTokens: 3,
        source: "llama.cpp:timings",
      },
    });
    expect(events).toHaveLength(4);
    expect(fake.requests.at(-1)?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("passes max_tokens, temperature, top_p, seed and stop; max_tokens ends with 'length'", async () => {
    const { fake, backend } = await setup({ tokens: ["a", "b", "c", "d"] });
    const events = await drain(
      backend.chatStream({
        model: "tiny",
        messages: hello,
        maxTokens: 2,
        temperature: 0.3,
        topP: 0.8,
        seed: 42,
        stop: ["zz"],
      }),
    );
    expect(events.at(-1)).toMatchObject({
      type: "done",
      finishReason: "length",
      usage: { completionTokens: 2 },
    });
    expect(fake.requests.at(-1)?.body).toMatchObject({
      max_tokens: 2,
      temperature: 0.3,
      top_p: 0.8,
      seed: 42,
      stop: ["zz"],
    });
  });

  it("answers a whole chat through the non-streamed API with the server's usage and timings", async () => {
    const { fake, backend } = await setup({ tokens: ["Hi", "!"], promptMs: 4, tokenMs: 2 });
    const result = await backend.chat({ model: "tiny", messages: hello, stop: ["!"] });
    const answer = fake.requests.at(-1)?.sent[0] as { usage: Record<string, number> };
    expect(fake.requests.at(-1)?.body).not.toHaveProperty("stream", true);
    expect(result).toEqual({
      text: "Hi",
      finishReason: "stop",
      usage: { promptTokens: answer.usage.prompt_tokens, completionTokens: 2 },
      timings: {
        promptMs: 4,
        decodeMs: 4,
        promptTokens: answer.usage.prompt_tokens,
        decodeTokens: 2,
        source: "llama.cpp:timings",
      },
    });
  });

  it("leaves timings out for a server that sends none (vLLM-style)", async () => {
    const { backend } = await setup({ timings: false });
    const events = await drain(backend.chatStream({ model: "tiny", messages: hello }));
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", finishReason: "stop", usage: { completionTokens: 4 } });
    expect(done).not.toHaveProperty("timings");
  });

  it("aborting one request hangs up on the server and ends with 'abort', while another request finishes", async () => {
    const tokens = Array.from({ length: 20 }, (_, i) => `t${i} `);
    const { fake, backend } = await setup({ tokens, tokenMs: 20 });
    const controller = new AbortController();
    const other = drain(
      backend.chatStream({ model: "tiny", messages: [{ role: "user", content: "other" }] }),
    );
    const events: ChatStreamEvent[] = [];
    for await (const event of backend.chatStream({
      model: "tiny",
      messages: hello,
      signal: controller.signal,
    })) {
      events.push(event);
      if (events.length === 2) controller.abort(new Error("client went away"));
    }
    expect(events.at(-1)).toEqual({
      type: "done",
      finishReason: "abort",
      usage: { promptTokens: 0, completionTokens: 2 },
    });
    const aborted = fake.requests.find((r) => JSON.stringify(r.body).includes(hello[0]?.content ?? "?"));
    await expect(aborted?.ended).resolves.toBe("disconnected");
    expect(aborted?.sent.some((chunk) => JSON.stringify(chunk).includes('"finish_reason":"stop"'))).toBe(
      false,
    );

    const otherEvents = await other;
    expect(otherEvents.filter((e) => e.type === "delta")).toHaveLength(20);
    expect(otherEvents.at(-1)).toMatchObject({
      type: "done",
      finishReason: "stop",
      usage: { completionTokens: 20 },
    });
  });

  it("reports a server that drops the connection mid-answer as BACKEND_UNREACHABLE, not as a finished answer", async () => {
    const { backend } = await setup({ failAfterTokens: 2, tokenMs: 5 });
    const events: ChatStreamEvent[] = [];
    const error = await (async () => {
      for await (const event of backend.chatStream({ model: "tiny", messages: hello })) events.push(event);
    })().catch((e: unknown) => e);
    expect(isGbtError(error, "BACKEND_UNREACHABLE")).toBe(true);
    expect((error as Error).message).toContain("closed the connection in the middle of an answer");
    expect(events.map((e) => e.type)).toEqual(["delta", "delta"]);
  });

  it("hangs up on the server when the consumer stops reading", async () => {
    const { fake, backend } = await setup({ tokens: Array.from({ length: 20 }, () => "x"), tokenMs: 20 });
    for await (const event of backend.chatStream({ model: "tiny", messages: hello })) {
      if (event.type === "delta") break;
    }
    await expect(fake.requests.at(-1)?.ended).resolves.toBe("disconnected");
  });

  it("returns 'abort' from a whole chat whose signal aborts", async () => {
    const { fake, backend } = await setup({ tokens: Array.from({ length: 20 }, () => "x"), tokenMs: 20 });
    const result = await backend.chat({ model: "tiny", messages: hello, signal: AbortSignal.timeout(60) });
    expect(result.finishReason).toBe("abort");
    await expect(fake.requests.at(-1)?.ended).resolves.toBe("disconnected");
  });

  it("reports an unknown model as MODEL_NOT_FOUND, streamed or whole", async () => {
    const { backend } = await setup({ models: ["tiny"] });
    const streamed = await errorOf(drain(backend.chatStream({ model: "nope", messages: hello })));
    expect(isGbtError(streamed, "MODEL_NOT_FOUND")).toBe(true);
    expect((streamed as Error).message).toContain("model 'nope' not found");
    expect(
      isGbtError(await errorOf(backend.chat({ model: "nope", messages: hello })), "MODEL_NOT_FOUND"),
    ).toBe(true);
  });

  it("reports a prompt longer than the context as CONTEXT_LENGTH_EXCEEDED", async () => {
    const { backend } = await setup({ contextSize: 16 });
    const error = await errorOf(
      drain(backend.chatStream({ model: "tiny", messages: [{ role: "user", content: "x".repeat(200) }] })),
    );
    expect(isGbtError(error, "CONTEXT_LENGTH_EXCEEDED")).toBe(true);
    expect((error as Error).message).toContain("exceeds the available context size (16 tokens)");
  });

  it("reports a 429 as BUSY at once, without retrying", async () => {
    const { fake, backend } = await setup({
      maxConcurrent: 1,
      tokens: Array.from({ length: 50 }, () => "x"),
      tokenMs: 20,
    });
    const first = drain(backend.chatStream({ model: "tiny", messages: hello }));
    await vi.waitFor(() => expect(fake.requests).toHaveLength(1));
    const error = await errorOf(backend.chat({ model: "tiny", messages: hello }));
    expect(isGbtError(error, "BUSY")).toBe(true);
    expect(fake.requests.filter((r) => r.status === 429)).toHaveLength(1);
    await first;
    expect(fake.requests).toHaveLength(2);
  });

  it("sends the configured API key, and never the user's OPENAI_API_KEY", async () => {
    vi.stubEnv("OPENAI_API_KEY", "sk-user-secret");
    vi.stubEnv("OPENAI_ORG_ID", "org-user");
    const { fake, backend } = await setup({ apiKey: "local-key" }, { apiKey: "local-key" });
    await backend.chat({ model: "tiny", messages: hello });
    expect(fake.requests.at(-1)?.headers.authorization).toBe("Bearer local-key");

    const anonymous = createOpenAICompatibleBackend({ baseURL: fake.url });
    backends.push(anonymous);
    const error = await errorOf(anonymous.chat({ model: "tiny", messages: hello }));
    expect(isGbtError(error, "UNAUTHORIZED")).toBe(true);
    const sent = fake.requests.at(-1)?.headers;
    expect(JSON.stringify(sent)).not.toContain("sk-user-secret");
    expect(sent?.["openai-organization"]).toBeUndefined();
  });

  it("lists models with llama.cpp's meta", async () => {
    const { backend } = await setup({ models: ["tiny", "small"] });
    const models = await backend.listModels();
    expect(models.map((m) => m.id)).toEqual(["tiny", "small"]);
    expect(models[0]).toMatchObject({ sizeBytes: 1_700_000, details: { ownedBy: "llamacpp", n_vocab: 356 } });
  });

  it("reports health from /health, and from the model list where /health is absent", async () => {
    const ok = await setup();
    expect(await ok.backend.health()).toMatchObject({ ok: true });
    expect(ok.fake.requests.at(-1)?.path).toBe("/health");

    const loading = await setup({ health: "loading" });
    const notReady = await loading.backend.health();
    expect(notReady.ok).toBe(false);
    expect(notReady.detail).toContain("Loading model");

    const absent = await setup({ health: "absent" });
    expect(await absent.backend.health()).toMatchObject({ ok: true });
    expect(absent.fake.requests.map((r) => r.path)).toEqual(["/health", "/v1/models"]);
  });

  it("reports a server that is not running as BACKEND_UNREACHABLE, quickly", async () => {
    const baseURL = `http://127.0.0.1:${await closedPort()}/v1`;
    const backend = createOpenAICompatibleBackend({ baseURL });
    backends.push(backend);
    const started = performance.now();
    const error = await errorOf(drain(backend.chatStream({ model: "tiny", messages: hello })));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(isGbtError(error, "BACKEND_UNREACHABLE")).toBe(true);
    expect((error as Error).message).toContain("ECONNREFUSED");
    expect(isGbtError(await errorOf(backend.listModels()), "BACKEND_UNREACHABLE")).toBe(true);
    const health = await backend.health();
    expect(health.ok).toBe(false);
    expect(health.detail).toContain(baseURL);
  });

  it("bounds the wait for an answer with timeoutMs", async () => {
    const { backend } = await setup({ promptMs: 2000 }, { timeoutMs: 100 });
    const error = await errorOf(backend.chat({ model: "tiny", messages: hello }));
    expect(isGbtError(error, "BACKEND_UNREACHABLE")).toBe(true);
    expect((error as Error).message).toContain("within 100 ms");
  });
});
