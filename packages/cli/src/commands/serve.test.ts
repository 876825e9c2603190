import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../testing/run-cli.js";
import { type ServeProcess, startServeProcess } from "../testing/serve-process.js";

const MODEL = "gbt-test-tiny";
const ask = [{ role: "user" as const, content: "Hello there, node." }];

describe("gbt serve on the embedded test model (real process, official openai client)", () => {
  let home: string;
  let node: ServeProcess;
  let client: OpenAI;

  beforeAll(async () => {
    home = await tempHome("gbt-serve-");
    expect((await runCli(["setup", "--yes"], { GBT_HOME: home })).exitCode).toBe(0);
    node = await startServeProcess(["--capacity", "1", "--threads", "1"], { GBT_HOME: home });
    client = new OpenAI({ baseURL: `${node.url}/v1`, apiKey: "local", maxRetries: 0 });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
  });

  it("lists the generated test model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it("streams an answer whose usage chunk carries the backend's token counts", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: ask,
      max_tokens: 24,
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe("length");
    expect(usage?.completion_tokens).toBe(24);
    expect(usage?.prompt_tokens).toBeGreaterThan(5);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + 24);
  });

  it("answers whole, reproducibly for a seed, with the same prompt count as the stream", async () => {
    const request = { model: MODEL, messages: ask, max_tokens: 16, seed: 42, temperature: 0.9 };
    const a = await client.chat.completions.create(request);
    const b = await client.chat.completions.create(request);
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    expect(a.usage?.completion_tokens).toBe(16);
    const streamed = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamedText = "";
    let promptTokens: number | undefined;
    for await (const chunk of streamed) {
      streamedText += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) promptTokens = chunk.usage.prompt_tokens;
    }
    expect(streamedText).toBe(a.choices[0]?.message.content);
    expect(promptTokens).toBe(a.usage?.prompt_tokens);
  });

  it("answers 429 at capacity, and a cancelled stream frees its slot", async () => {
    const controller = new AbortController();
    const long = await client.chat.completions.create(
      { model: MODEL, messages: ask, max_tokens: 400, stream: true },
      { signal: controller.signal },
    );
    const iterator = long[Symbol.asyncIterator]();
    await iterator.next(); // the stream is open: the only slot is taken
    const busy = await fetch(`${node.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: ask, max_tokens: 1 }),
    });
    expect(busy.status).toBe(429);
    expect(busy.headers.get("retry-after")).toBe("1");
    expect(((await busy.json()) as { error: { code: string } }).error.code).toBe("over_capacity");
    controller.abort();
    await iterator.return?.();
    // The slot frees once the server notices the disconnect; poll /healthz rather than sleeping blindly.
    for (let i = 0; i < 100; i++) {
      const health = (await (await fetch(`${node.url}/healthz`)).json()) as { inFlight: number };
      if (health.inFlight === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 2 });
    expect(after.usage?.completion_tokens).toBe(2);
  });

  it("rejects bad input with OpenAI error bodies and keeps serving", async () => {
    const post = (body: string) =>
      fetch(`${node.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    const cases: Array<[string, number, string]> = [
      ["{", 400, "invalid_json"],
      [JSON.stringify({ model: "no-such-model", messages: ask }), 404, "model_not_found"],
      [JSON.stringify({ model: MODEL, messages: ask, max_tokens: -5 }), 400, "invalid_value"],
      [JSON.stringify({ model: MODEL, messages: ask, n: 64 }), 400, "invalid_value"],
      [
        JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x ".repeat(5000) }] }),
        400,
        "context_length_exceeded",
      ],
      [
        JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] }),
        413,
        "request_too_large",
      ],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(body);
      expect([response.status, ((await response.json()) as { error: { code: string } }).error.code]).toEqual([
        status,
        code,
      ]);
    }
    const ok = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 1 });
    expect(ok.usage?.completion_tokens).toBe(1);
  });

  it("exposes /healthz and Prometheus /metrics", async () => {
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as {
      status: string;
      backend: { kind: string };
    };
    expect(health).toMatchObject({ status: "ok", backend: { kind: "embedded" } });
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/gbt_node_tokens_total\{type="completion"\} \d+/);
    expect(metrics).toContain("gbt_node_time_to_first_token_seconds_bucket");
  });

  it("finishes an in-flight stream on SIGTERM, then exits 0", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: ask,
      max_tokens: 300,
      stream: true,
      stream_options: { include_usage: true },
    });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    const exit = node.stop("SIGTERM");
    let usage: OpenAI.CompletionUsage | null | undefined;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      if (step.value.usage) usage = step.value.usage;
    }
    expect(usage?.completion_tokens).toBe(300);
    expect(await exit).toBe(0);
  });
});

describe("gbt serve refuses what it cannot do", () => {
  it("exits with the config code when the node is not set up", async () => {
    const home = await tempHome("gbt-serve-");
    const result = await runCli(["serve", "--json"], { GBT_HOME: home });
    expect(result.exitCode).toBe(3);
    expect(onlyJson<{ error: { code: string } }>(result.stdout).error.code).toBe("NOT_SET_UP");
  });

  it("refuses a non-loopback host without API keys", async () => {
    const home = await tempHome("gbt-serve-");
    await runCli(["setup", "--yes", "--owner", TEST_OWNER], { GBT_HOME: home });
    const result = await runCli(["serve", "--host", "0.0.0.0", "--port", "0", "--json"], { GBT_HOME: home });
    expect(result.exitCode).toBe(2);
    expect(onlyJson<{ error: { message: string } }>(result.stdout).error.message).toContain("API keys");
  });

  it("exits with the unreachable code when the configured Ollama is not running", async () => {
    const home = await tempHome("gbt-serve-");
    await runCli(["setup", "--yes", "--backend", "ollama", "--backend-url", "http://127.0.0.1:9"], {
      GBT_HOME: home,
    });
    const result = await runCli(["serve", "--port", "0", "--json"], { GBT_HOME: home });
    expect(result.exitCode).toBe(5);
    expect(onlyJson<{ error: { code: string } }>(result.stdout).error.code).toBe("BACKEND_UNREACHABLE");
  });
});

describe("gbt keys", () => {
  it("creates, lists and revokes keys; a served node on --require-api-key honours them", async () => {
    const home = await tempHome("gbt-keys-");
    await runCli(["setup", "--yes"], { GBT_HOME: home });
    const created = onlyJson<{ id: string; key: string }>(
      (await runCli(["keys", "create", "ci", "--json"], { GBT_HOME: home })).stdout,
    );
    expect(created.key).toMatch(/^gbt_sk_/);
    const listed = await runCli(["keys", "list"], { GBT_HOME: home });
    expect(listed.stdout).toContain("ci");
    expect(listed.stdout).not.toContain(created.key);

    const node = await startServeProcess(["--require-api-key", "--threads", "1"], { GBT_HOME: home });
    try {
      const body = JSON.stringify({ model: MODEL, messages: ask, max_tokens: 1 });
      const headers = (key?: string) => ({
        "content-type": "application/json",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      });
      expect(
        (await fetch(`${node.url}/v1/chat/completions`, { method: "POST", headers: headers(), body })).status,
      ).toBe(401);
      expect(
        (
          await fetch(`${node.url}/v1/chat/completions`, {
            method: "POST",
            headers: headers(created.key),
            body,
          })
        ).status,
      ).toBe(200);
      expect((await runCli(["keys", "revoke", created.id], { GBT_HOME: home })).exitCode).toBe(0);
      expect(
        (
          await fetch(`${node.url}/v1/chat/completions`, {
            method: "POST",
            headers: headers(created.key),
            body,
          })
        ).status,
      ).toBe(401);
    } finally {
      await node.stop();
    }
  });
});

describe("gbt serve on Ctrl-C", () => {
  it("exits 0 on SIGINT after printing its stopped event", async () => {
    const home = await tempHome("gbt-serve-");
    await runCli(["setup", "--yes"], { GBT_HOME: home });
    const node = await startServeProcess(["--threads", "1"], { GBT_HOME: home });
    let stdout = "";
    node.child.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
    expect(await node.stop("SIGINT")).toBe(0);
    expect(stdout).toContain('"event":"stopped"');
  });
});
