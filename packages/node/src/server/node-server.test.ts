import { request as httpRequest } from "node:http";
import OpenAI from "openai";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createScriptedBackend, type ScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, type NodeServerOptions, startNodeServer } from "./node-server.js";

const logger = pino({ level: "silent" });
const servers: NodeServer[] = [];

async function serve(backend: ScriptedBackend, extra: Partial<NodeServerOptions> = {}) {
  const server = await startNodeServer({ backend, logger, capacity: 2, ...extra });
  servers.push(server);
  return { server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 }) };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

/** Raw HTTP, for bodies the OpenAI client would never send. */
function raw(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const req = httpRequest(
        `${url}/v1/chat/completions`,
        { method: "POST", headers: { "content-type": "application/json", ...headers } },
        (res) => {
          let text = "";
          res.on("data", (c) => {
            text += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
        },
      );
      req.on("error", reject);
      req.end(body);
    },
  );
}

const until = async (check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("node server (OpenAI-compatible)", () => {
  it("streams chunks, then the usage chunk with the backend's counts, then [DONE]", async () => {
    const backend = createScriptedBackend({ tokens: ["Hel", "lo", "!"] });
    const { client } = await serve(backend);
    const stream = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "say hello" }],
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) pieces.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(pieces.join("")).toBe("Hello!Hello");
    expect(finish).toBe("length");
    expect(usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  it("answers a whole completion with usage", async () => {
    const { client } = await serve(createScriptedBackend({ tokens: ["a"] }));
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 3,
    });
    expect(completion.choices[0]?.message).toMatchObject({ role: "assistant", content: "aaa" });
    expect(completion.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
  });

  it("lists models", async () => {
    const { client } = await serve(createScriptedBackend({ models: ["m1", "m2"] }));
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["m1", "m2"]);
  });

  it("aborts generation when the client disconnects, freeing the slot", async () => {
    const backend = createScriptedBackend({ tokenMs: 20, defaultMaxTokens: 1000 });
    const { client, server } = await serve(backend, { capacity: 1 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "scripted", messages: [{ role: "user", content: "go" }], stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    try {
      for await (const _ of stream) {
        if (++seen === 3) controller.abort();
      }
    } catch {
      // the client reports its own abort
    }
    await until(() => server.inFlight() === 0 && backend.active() === 0);
    expect(backend.finished).toEqual([{ reason: "abort", completionTokens: expect.any(Number) }]);
    expect(backend.finished[0]?.completionTokens).toBeLessThan(20);
    const after = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
    });
    expect(after.choices[0]?.finish_reason).toBe("length");
  });

  it("answers 429 with Retry-After at capacity, and serves again once a slot frees", async () => {
    const backend = createScriptedBackend({ tokenMs: 10 });
    const { client, server } = await serve(backend, { capacity: 1 });
    const slow = client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 20,
    });
    await until(() => server.inFlight() === 1);
    const busy = await raw(
      server.url,
      JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "y" }] }),
    );
    expect(busy.status).toBe(429);
    expect(busy.headers["retry-after"]).toBe("1");
    expect(JSON.parse(busy.body).error.code).toBe("over_capacity");
    await slow;
    expect(server.inFlight()).toBe(0);
  });

  it("rejects hostile input with OpenAI-style errors that name the field, and keeps serving", async () => {
    const backend = createScriptedBackend({ contextLength: 8 });
    const { server, client } = await serve(backend, { maxBodyBytes: 2048 });
    const msg = [{ role: "user", content: "x" }];
    const cases: Array<[string | Buffer, number, string, string | null]> = [
      ["{not json", 400, "invalid_json", null],
      [JSON.stringify({ model: "nope", messages: msg }), 404, "model_not_found", null],
      [
        JSON.stringify({ model: "scripted", messages: msg, max_tokens: -1 }),
        400,
        "invalid_value",
        "max_tokens",
      ],
      [JSON.stringify({ model: "scripted", messages: msg, n: 1000 }), 400, "invalid_value", "n"],
      [
        JSON.stringify({ model: "scripted", messages: msg, temperature: 50 }),
        400,
        "invalid_value",
        "temperature",
      ],
      [JSON.stringify({ model: "scripted", messages: "hi" }), 400, "invalid_value", "messages"],
      [JSON.stringify({ model: 5, messages: msg }), 400, "invalid_value", "model"],
      [
        JSON.stringify({ model: "scripted", messages: [{ role: "root", content: "x" }] }),
        400,
        "invalid_value",
        "messages[0].role",
      ],
      [
        JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "x".repeat(100) }] }),
        400,
        "context_length_exceeded",
        null,
      ],
      [Buffer.alloc(4096, 0x20), 413, "request_too_large", null],
    ];
    for (const [body, status, code, param] of cases) {
      const response = await raw(server.url, body);
      expect(
        { status: response.status, code: JSON.parse(response.body).error.code },
        String(body).slice(0, 80),
      ).toEqual({ status, code });
      if (param) expect(JSON.parse(response.body).error.param).toBe(param);
    }
    expect(server.inFlight()).toBe(0);
    const ok = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
    });
    expect(ok.usage?.completion_tokens).toBe(1);
  });

  it("requires a valid API key when configured, except for /healthz", async () => {
    const keys = { verify: (key: string) => key === "gbt_sk_good" };
    const { server } = await serve(createScriptedBackend(), { requireApiKey: true, apiKeys: keys as never });
    const body = JSON.stringify({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 1,
    });
    expect((await raw(server.url, body)).status).toBe(401);
    expect((await raw(server.url, body, { authorization: "Bearer gbt_sk_bad" })).status).toBe(401);
    expect((await raw(server.url, body, { authorization: "Bearer gbt_sk_good" })).status).toBe(200);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it("ends a stream that fails mid-way with an error event and no [DONE]", async () => {
    const { server } = await serve(createScriptedBackend({ failAfterTokens: 2 }));
    const response = await raw(
      server.url,
      JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "x" }], stream: true }),
    );
    expect(response.status).toBe(200);
    expect(response.body).toContain('"error"');
    expect(response.body).not.toContain("[DONE]");
    expect(server.inFlight()).toBe(0);
  });

  it("exposes Prometheus metrics for requests, tokens and latency", async () => {
    const { server, client } = await serve(createScriptedBackend());
    await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "abcd" }],
      max_tokens: 4,
    });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gbt_node_requests_total\{route="chat",status="200"\} 1/);
    expect(text).toMatch(/gbt_node_tokens_total\{type="completion"\} 4/);
    expect(text).toMatch(/gbt_node_time_to_first_token_seconds_count 1/);
  });

  it("finishes in-flight work on close, then refuses new connections", async () => {
    const backend = createScriptedBackend({ tokenMs: 5 });
    const { server, client } = await serve(backend);
    const pending = client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 20,
    });
    await until(() => server.inFlight() === 1);
    const closing = server.close(5_000);
    const completion = await pending;
    expect(completion.usage?.completion_tokens).toBe(20);
    await closing;
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
