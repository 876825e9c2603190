import { createServer } from "node:net";
import { isGbtError } from "@gbt/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type FakeOllama, type FakeOllamaOptions, startFakeOllama } from "../testing/fake-ollama.js";
import { createOllamaBackend } from "./ollama.js";
import type { Backend, ChatStreamEvent, PullProgress } from "./types.js";

const fakes: FakeOllama[] = [];
const backends: Backend[] = [];

afterEach(async () => {
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function setup(options: FakeOllamaOptions = {}) {
  const fake = await startFakeOllama(options);
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

describe("Ollama backend", () => {
  it("reports health with Ollama's version", async () => {
    const { backend } = await setup({ version: "0.12.6" });
    const health = await backend.health();
    expect(health).toMatchObject({ ok: true, version: "0.12.6" });
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("lists installed models with Ollama's digest, size and details", async () => {
    const { fake, backend } = await setup({
      models: [
        {
          name: "qwen3:0.6b",
          layers: [1000, 24],
          details: { family: "qwen3", quantization_level: "Q4_K_M" },
        },
        "tiny",
      ],
    });
    const models = await backend.listModels();
    const tags = fake.requests.find((r) => r.path === "/api/tags")?.sent[0] as {
      models: Array<{ digest: string }>;
    };
    expect(models.map((m) => m.id)).toEqual(["qwen3:0.6b", "tiny:latest"]);
    expect(models[0]).toMatchObject({
      digest: tags.models[0]?.digest,
      sizeBytes: 1024,
      details: { family: "qwen3", quantization_level: "Q4_K_M", format: "gguf" },
    });
  });

  it("streams the tokens, then usage and timings exactly as Ollama reported them", async () => {
    const { fake, backend } = await setup({ tokens: ["Hel", "lo", " world"], promptMs: 30, tokenMs: 10 });
    const events = await drain(backend.chatStream({ model: "tiny", messages: hello }));
    expect(events.slice(0, 3)).toEqual([
      { type: "delta", text: "Hel" },
      { type: "delta", text: "lo" },
      { type: "delta", text: " world" },
    ]);
    const final = fake.requests.at(-1)?.sent.at(-1) as Record<string, number>;
    expect(final.done).toBe(true);
    expect(events[3]).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: final.prompt_eval_count, completionTokens: final.eval_count },
      timings: {
        promptMs: 30,
        decodeMs: 30,
        promptTokens: final.prompt_eval_count,
        decodeTokens: 3,
        source: "ollama:eval_duration",
      },
    });
    expect(events).toHaveLength(4);
  });

  it("passes maxTokens, temperature, top_p, seed and stop as Ollama options; num_predict ends with 'length'", async () => {
    const { fake, backend } = await setup({ tokens: ["a", "b", "c", "d", "e"] });
    const result = await backend.chat({
      model: "tiny",
      messages: hello,
      maxTokens: 2,
      temperature: 0.2,
      topP: 0.9,
      seed: 7,
      stop: ["zz"],
    });
    expect(result).toMatchObject({ text: "ab", finishReason: "length", usage: { completionTokens: 2 } });
    expect(fake.requests.at(-1)?.body).toMatchObject({
      model: "tiny",
      stream: false,
      options: { num_predict: 2, temperature: 0.2, top_p: 0.9, seed: 7, stop: ["zz"] },
    });
  });

  it("stops at a stop string without returning it", async () => {
    const { backend } = await setup({ tokens: ["one", " two", " END", " three"] });
    const events = await drain(backend.chatStream({ model: "tiny", messages: hello, stop: [" END"] }));
    const text = events.flatMap((e) => (e.type === "delta" ? [e.text] : [])).join("");
    expect(text).toBe("one two");
    expect(events.at(-1)).toMatchObject({
      type: "done",
      finishReason: "stop",
      usage: { completionTokens: 3 },
    });
  });

  it("answers a whole chat through the non-streamed API with Ollama's counts", async () => {
    const { fake, backend } = await setup({ tokens: ["Hi", "!"], promptMs: 4, tokenMs: 2 });
    const result = await backend.chat({ model: "tiny", messages: hello });
    const answer = fake.requests.at(-1)?.sent[0] as Record<string, number>;
    expect(fake.requests.at(-1)?.sent).toHaveLength(1);
    expect(result).toEqual({
      text: "Hi!",
      finishReason: "stop",
      usage: { promptTokens: answer.prompt_eval_count, completionTokens: 2 },
      timings: {
        promptMs: 4,
        decodeMs: 4,
        promptTokens: answer.prompt_eval_count,
        decodeTokens: 2,
        source: "ollama:eval_duration",
      },
    });
  });

  it("aborting one request hangs up on Ollama and ends with 'abort', while another request on the same backend finishes", async () => {
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
    expect(aborted?.sent.some((chunk) => (chunk as { done: boolean }).done)).toBe(false);

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

  it("hangs up on Ollama when the consumer stops reading", async () => {
    const { fake, backend } = await setup({ tokens: Array.from({ length: 20 }, () => "x"), tokenMs: 20 });
    for await (const event of backend.chatStream({ model: "tiny", messages: hello })) {
      if (event.type === "delta") break;
    }
    await expect(fake.requests.at(-1)?.ended).resolves.toBe("disconnected");
  });

  it("returns 'abort' from a whole chat whose signal aborts, hanging up on Ollama", async () => {
    const { fake, backend } = await setup({ tokens: Array.from({ length: 20 }, () => "x"), tokenMs: 20 });
    const result = await backend.chat({ model: "tiny", messages: hello, signal: AbortSignal.timeout(60) });
    expect(result.finishReason).toBe("abort");
    await expect(fake.requests.at(-1)?.ended).resolves.toBe("disconnected");
  });

  it("ends at once with 'abort' when the signal is already aborted", async () => {
    const { fake, backend } = await setup();
    const events = await drain(
      backend.chatStream({ model: "tiny", messages: hello, signal: AbortSignal.abort() }),
    );
    expect(events).toEqual([
      { type: "done", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } },
    ]);
    expect(fake.requests.filter((r) => r.path === "/api/chat")).toHaveLength(0);
  });

  it("reports an unknown model as MODEL_NOT_FOUND, streamed or whole", async () => {
    const { backend } = await setup();
    const streamed = drain(backend.chatStream({ model: "nope", messages: hello }));
    await expect(streamed).rejects.toSatisfy((error) => isGbtError(error, "MODEL_NOT_FOUND"));
    const whole = await backend.chat({ model: "nope", messages: hello }).catch((error: unknown) => error);
    expect(isGbtError(whole, "MODEL_NOT_FOUND")).toBe(true);
    expect((whole as Error).message).toContain("model 'nope' not found");
  });

  it("reports a server that is not running as BACKEND_UNREACHABLE with a hint to start Ollama", async () => {
    const host = `http://127.0.0.1:${await closedPort()}`;
    const backend = createOllamaBackend({ host });
    backends.push(backend);
    const error = await drain(backend.chatStream({ model: "tiny", messages: hello })).catch(
      (e: unknown) => e,
    );
    expect(isGbtError(error, "BACKEND_UNREACHABLE")).toBe(true);
    expect((error as { hint?: string }).hint).toContain("ollama serve");
    expect((error as Error).message).toContain("ECONNREFUSED");
    await expect(backend.listModels()).rejects.toSatisfy((e) => isGbtError(e, "BACKEND_UNREACHABLE"));
    const health = await backend.health();
    expect(health.ok).toBe(false);
    expect(health.detail).toContain(host);
  });

  it("pulls a model with progress in Ollama's order, after which it is listed", async () => {
    const { backend } = await setup({ registry: [{ name: "phi4-mini", layers: [800, 200] }], pullSteps: 2 });
    const progress: PullProgress[] = [];
    await backend.pullModel?.("phi4-mini", (p) => progress.push(p));
    const statuses = progress.map((p) => p.status.replace(/pulling [0-9a-f]{12}/, "pulling LAYER"));
    expect([...new Set(statuses)]).toEqual([
      "pulling manifest",
      "pulling LAYER",
      "verifying sha256 digest",
      "writing manifest",
      "success",
    ]);
    const firstLayer = progress.filter((p) => p.status === progress[1]?.status);
    expect(firstLayer.map((p) => [p.completedBytes, p.totalBytes])).toEqual([
      [undefined, 800],
      [400, 800],
      [800, 800],
    ]);
    expect(progress.filter((p) => p.totalBytes === 200).at(-1)?.completedBytes).toBe(200);
    expect((await backend.listModels()).map((m) => m.id)).toContain("phi4-mini:latest");
  });

  it("reports a model the registry does not have as MODEL_NOT_FOUND when pulling", async () => {
    const { backend } = await setup();
    const progress: string[] = [];
    const error = await backend
      .pullModel?.("no-such-model", (p) => progress.push(p.status))
      .catch((e: unknown) => e);
    expect(isGbtError(error, "MODEL_NOT_FOUND")).toBe(true);
    expect((error as Error).message).toContain("file does not exist");
    expect(progress).toEqual(["pulling manifest"]);
  });

  it("removes a model; removing it again is MODEL_NOT_FOUND", async () => {
    const { fake, backend } = await setup({ models: ["tiny", "other"] });
    await backend.removeModel?.("other");
    expect(fake.installed()).toEqual(["tiny:latest"]);
    expect((await backend.listModels()).map((m) => m.id)).toEqual(["tiny:latest"]);
    await expect(backend.removeModel?.("other")).rejects.toSatisfy((e) => isGbtError(e, "MODEL_NOT_FOUND"));
  });

  it("loadModel keeps a model loaded across chats; unloadModel and close() release it", async () => {
    const { fake, backend } = await setup({ models: ["tiny", "other"] });
    await backend.loadModel?.("tiny");
    expect(fake.loaded()).toEqual(["tiny:latest"]);
    await backend.chat({ model: "tiny:latest", messages: hello });
    expect(fake.requests.at(-1)?.body).toMatchObject({ keep_alive: -1 });
    await backend.chat({ model: "other", messages: hello });
    expect(fake.requests.at(-1)?.body).not.toHaveProperty("keep_alive");
    await backend.unloadModel?.("tiny");
    expect(fake.loaded()).toEqual(["other:latest"]);

    await backend.loadModel?.("other");
    expect(fake.loaded()).toEqual(["other:latest"]);
    await backend.close();
    expect(fake.loaded()).toEqual([]);
  });
});
