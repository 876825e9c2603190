import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isGbtError } from "@gbt/protocol";
import { ChatMLChatWrapper, getLlama, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateTestModel } from "../test-model/test-model.js";
import {
  createEmbeddedBackend,
  DEFAULT_EMBEDDED_CAPACITY,
  defaultThreads,
  EMBEDDED_TIMINGS_SOURCE,
} from "./embedded.js";
import type { Backend, ChatMessage, ChatRequest, ChatStreamEvent } from "./types.js";

const MODEL = "tiny";
const messages: ChatMessage[] = [
  { role: "system", content: "You are a test." },
  { role: "user", content: "Say something." },
];

let dir: string;
let modelPath: string;
let modelSha256: string;
/** The same file loaded straight through node-llama-cpp: the reference tokenizer. */
let reference: LlamaModel;
let backend: Backend;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gbt-embedded-"));
  const generated = await generateTestModel(join(dir, `${MODEL}.gguf`));
  modelPath = generated.path;
  modelSha256 = generated.sha256;
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: 1 });
  reference = await llama.loadModel({ modelPath });
  backend = createEmbeddedBackend({ models: [{ id: MODEL, path: modelPath }], threads: 1, capacity: 2 });
});

afterAll(async () => {
  await backend?.close();
  await reference?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function drain(stream: AsyncIterable<ChatStreamEvent>) {
  const deltas: string[] = [];
  for await (const event of stream) {
    if (event.type === "delta") deltas.push(event.text);
    else if (event.type === "done") return { deltas, text: deltas.join(""), done: event };
  }
  throw new Error("stream ended without a done event");
}

const request = (extra: Partial<ChatRequest> = {}): ChatRequest => ({ model: MODEL, messages, ...extra });

describe("embedded backend on the generated tiny model", () => {
  it("streams the completion in several deltas and ends with usage and its own timings", async () => {
    const { deltas, text, done } = await drain(backend.chatStream(request({ maxTokens: 24, seed: 1 })));
    expect(deltas.length).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);
    expect(done.finishReason).toBe("length");
    expect(done.usage.completionTokens).toBe(24);
    expect(done.timings).toMatchObject({
      source: EMBEDDED_TIMINGS_SOURCE,
      promptTokens: done.usage.promptTokens,
      decodeTokens: 23,
    });
    expect(done.timings?.promptMs).toBeGreaterThan(0);
    expect(done.timings?.decodeMs).toBeGreaterThan(0);
  });

  it("counts prompt tokens as llama.cpp tokenizes the ChatML prompt, and completion tokens as generated", async () => {
    const chatMl = new ChatMLChatWrapper().generateContextState({
      chatHistory: [
        { type: "system", text: "You are a test." },
        { type: "user", text: "Say something." },
        { type: "model", response: [] },
      ],
    });
    const expectedPrompt = chatMl.contextText.tokenize(reference.tokenizer).length;
    expect(await backend.countPromptTokens?.(request())).toBe(expectedPrompt);

    const result = await backend.chat(request({ maxTokens: 40, seed: 3 }));
    expect(result.usage.promptTokens).toBe(expectedPrompt);
    expect(result.usage.completionTokens).toBe(40);
    // The test model's pieces are single characters, so its own tokenizer gives back one token per generated token.
    expect(reference.tokenize(result.text)).toHaveLength(result.usage.completionTokens);
  });

  it("respects maxTokens with finishReason length", async () => {
    const result = await backend.chat(request({ maxTokens: 5, temperature: 1, seed: 9 }));
    expect(result.finishReason).toBe("length");
    expect(result.usage.completionTokens).toBe(5);
    expect(reference.tokenize(result.text)).toHaveLength(5);
  });

  it("reproduces a seeded completion at temperature > 0, and another seed gives another text", async () => {
    const settings = { maxTokens: 48, temperature: 1, topP: 0.95 };
    const first = await backend.chat(request({ ...settings, seed: 42 }));
    const again = await backend.chat(request({ ...settings, seed: 42 }));
    const other = await backend.chat(request({ ...settings, seed: 43 }));
    expect(again.text).toBe(first.text);
    expect(other.text).not.toBe(first.text);
  });

  it("maps seeds outside uint32 deterministically", async () => {
    const first = await backend.chat(request({ maxTokens: 16, temperature: 1, seed: -5 }));
    const again = await backend.chat(request({ maxTokens: 16, temperature: 1, seed: -5 }));
    expect(again.text).toBe(first.text);
  });

  it("stops before a stop string, without emitting any part of it", async () => {
    const settings = { maxTokens: 64, temperature: 1, seed: 5 };
    const full = await backend.chat(request(settings));
    const stop = full.text.slice(10, 13);
    const cut = full.text.indexOf(stop);
    const stopped = await drain(backend.chatStream(request({ ...settings, stop: [stop] })));
    expect(stopped.done.finishReason).toBe("stop");
    expect(stopped.text).toBe(full.text.slice(0, cut));
    expect(stopped.done.usage.completionTokens).toBeLessThanOrEqual(cut + stop.length);
  });

  it("finishes with stop when the model ends the completion, counting the end-of-generation token", async () => {
    const endsPath = join(dir, "ends.gguf");
    await generateTestModel(endsPath, { endOfGeneration: "immediately" });
    const ends = createEmbeddedBackend({ models: [{ id: "ends", path: endsPath }], threads: 1 });
    try {
      const { deltas, done } = await drain(
        ends.chatStream({ model: "ends", messages, maxTokens: 50, seed: 1 }),
      );
      expect(deltas).toEqual([]);
      expect(done.finishReason).toBe("stop");
      expect(done.usage.completionTokens).toBe(1);
      expect(done.timings?.decodeTokens).toBe(0);
    } finally {
      await ends.close();
    }
  });

  it("answers MODEL_NOT_FOUND for an unknown model, naming the models it has", async () => {
    const error = await backend.chat({ model: "nope", messages }).catch((caught: unknown) => caught);
    expect(isGbtError(error, "MODEL_NOT_FOUND")).toBe(true);
    expect((error as { details: { available: string[] } }).details.available).toEqual([MODEL]);
    await expect(backend.loadModel?.("nope")).rejects.toSatisfy((caught) =>
      isGbtError(caught, "MODEL_NOT_FOUND"),
    );
  });

  it("answers CONTEXT_LENGTH_EXCEEDED for a prompt longer than the context", async () => {
    const small = createEmbeddedBackend({
      models: [{ id: MODEL, path: modelPath }],
      threads: 1,
      contextSize: 64,
    });
    try {
      const long = [{ role: "user" as const, content: "word ".repeat(40) }];
      expect(await small.countPromptTokens?.({ model: MODEL, messages: long })).toBeGreaterThan(64);
      const error = await small.chat({ model: MODEL, messages: long }).catch((caught: unknown) => caught);
      expect(isGbtError(error, "CONTEXT_LENGTH_EXCEEDED")).toBe(true);
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({ contextSize: 64 });
      // A prompt that fits generates up to the end of the context, never past it.
      const fits = await small.chat({ model: MODEL, messages: [{ role: "user", content: "hi" }], seed: 1 });
      expect(fits.finishReason).toBe("length");
      expect(fits.usage.promptTokens + fits.usage.completionTokens).toBe(64);
    } finally {
      await small.close();
    }
  });

  it("lists its models with the file's sha256 digest, size and context length", async () => {
    const models = await backend.listModels();
    expect(models).toHaveLength(1);
    expect(models[0]).toMatchObject({
      id: MODEL,
      digest: `sha256:${modelSha256}`,
      sizeBytes: expect.any(Number),
      contextLength: 512,
    });
  });

  it("serves every .gguf file of a models dir under its file name", async () => {
    const modelsDir = await mkdtemp(join(dir, "models-"));
    await copyFile(modelPath, join(modelsDir, "alpha.gguf"));
    await copyFile(modelPath, join(modelsDir, "beta.gguf"));
    const fromDir = createEmbeddedBackend({ modelsDir, threads: 1 });
    try {
      expect((await fromDir.listModels()).map((model) => model.id)).toEqual(["alpha", "beta"]);
      const result = await fromDir.chat({ model: "beta", messages, maxTokens: 3 });
      expect(result.usage.completionTokens).toBe(3);
    } finally {
      await fromDir.close();
    }
  });

  it("reports node-llama-cpp's version and build in health", async () => {
    const health = await backend.health();
    expect(health.ok).toBe(true);
    expect(health.version).toMatch(/^node-llama-cpp \d+\.\d+\.\d+ \(llama\.cpp /);
    expect(health.detail).toMatch(/CPU only, 1 threads/);
  });
});

describe("embedded backend capacity and abort", () => {
  let single: Backend;
  beforeAll(() => {
    single = createEmbeddedBackend({ models: [{ id: MODEL, path: modelPath }], threads: 1, capacity: 1 });
  });
  afterAll(async () => {
    await single.close();
  });

  it("refuses a request over capacity with BUSY, and takes one again once a slot is free", async () => {
    expect(DEFAULT_EMBEDDED_CAPACITY).toBe(1);
    const first = single.chatStream(request({ maxTokens: 400 }))[Symbol.asyncIterator]();
    expect((await first.next()).value).toMatchObject({ type: "delta" });
    const error = await single.chat(request({ maxTokens: 1 })).catch((caught: unknown) => caught);
    expect(isGbtError(error, "BUSY")).toBe(true);
    await first.return?.(undefined); // the reader goes away: the slot is freed
    const next = await single.chat(request({ maxTokens: 2 }));
    expect(next.usage.completionTokens).toBe(2);
  });

  it("stops on abort, ends with finishReason abort and the tokens generated, and frees the slot", async () => {
    const controller = new AbortController();
    const events: ChatStreamEvent[] = [];
    for await (const event of single.chatStream(request({ maxTokens: 400, signal: controller.signal }))) {
      events.push(event);
      if (events.length === 3) controller.abort();
    }
    const done = events.at(-1);
    expect(done).toMatchObject({ type: "done", finishReason: "abort" });
    if (done?.type !== "done") throw new Error("no done event");
    expect(done.usage.completionTokens).toBeGreaterThanOrEqual(3);
    expect(done.usage.completionTokens).toBeLessThan(10);
    expect(done.usage.promptTokens).toBeGreaterThan(0);
    const text = events.flatMap((event) => (event.type === "delta" ? [event.text] : [])).join("");
    expect(reference.tokenize(text)).toHaveLength(done.usage.completionTokens);

    const next = await single.chat(request({ maxTokens: 4 }));
    expect(next.usage.completionTokens).toBe(4);
  });

  it("frees the slot on abort even when the reader stops pulling", async () => {
    const controller = new AbortController();
    const stream = single
      .chatStream(request({ maxTokens: 400, signal: controller.signal }))
      [Symbol.asyncIterator]();
    await stream.next();
    controller.abort(); // nobody pulls the stream after this
    await expect
      .poll(() => single.chat(request({ maxTokens: 1 })).then((result) => result.usage.completionTokens))
      .toBe(1);
    expect((await stream.next()).value).toMatchObject({ type: "done", finishReason: "abort" });
  });

  it("ends at once with abort when the signal is already aborted", async () => {
    const result = await single.chat(request({ signal: AbortSignal.abort() }));
    expect(result).toMatchObject({ text: "", finishReason: "abort", usage: { completionTokens: 0 } });
  });

  it("serves a model file added at run time, and stops serving it when forgotten", async () => {
    const growing = createEmbeddedBackend({ models: [{ id: MODEL, path: modelPath }], threads: 1 });
    try {
      growing.addModelFile?.("added", modelPath);
      await growing.loadModel?.("added");
      expect((await growing.listModels()).map((m) => m.id)).toEqual([MODEL, "added"]);
      const result = await growing.chat({ model: "added", messages, maxTokens: 1 });
      expect(result.usage.completionTokens).toBe(1);
      await growing.forgetModel?.("added");
      expect((await growing.listModels()).map((m) => m.id)).toEqual([MODEL]);
      await expect(growing.chat({ model: "added", messages })).rejects.toSatisfy((error) =>
        isGbtError(error, "MODEL_NOT_FOUND"),
      );
    } finally {
      await growing.close();
    }
  });

  it("refuses work after close", async () => {
    const closing = createEmbeddedBackend({ models: [{ id: MODEL, path: modelPath }], threads: 1 });
    await closing.loadModel?.(MODEL);
    await closing.close();
    await expect(closing.chat(request())).rejects.toSatisfy((error) =>
      isGbtError(error, "BACKEND_UNREACHABLE"),
    );
  });
});

describe("defaultThreads", () => {
  it("uses one thread up to two logical CPUs, then physical cores with one CPU left for the event loop", () => {
    expect(defaultThreads(1)).toBe(1);
    expect(defaultThreads(2, 2)).toBe(1);
    expect(defaultThreads(4, 4)).toBe(3);
    expect(defaultThreads(8, 4)).toBe(4);
    expect(defaultThreads(32, 16)).toBe(16);
  });
});
