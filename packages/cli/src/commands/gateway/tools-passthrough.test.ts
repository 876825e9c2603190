/**
 * Tool calling end to end, real processes: the official `openai` client → `gbt gateway serve` →
 * `gbt serve --backend openai` → an OpenAI-compatible server (the fake, answering as llama.cpp's
 * `--jinja` does). A tool-calling loop works through the pool, streamed and whole, and each
 * request settles from the node's valid receipt (its tokens agree with what the gateway relayed).
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "@gbt/node/testing";
import Database from "better-sqlite3";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onlyJson, runCli, TEST_OWNER, tempHome } from "../../testing/run-cli.js";
import {
  type GbtProcess,
  type ServeProcess,
  startGbtProcess,
  startServeProcess,
} from "../../testing/serve-process.js";

const weather: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("tool calling through the pool to an OpenAI-compatible backend (real processes)", () => {
  let fake: FakeOpenAIServer;
  let gateway: GbtProcess;
  let node: ServeProcess;
  let gatewayHome: string;
  let accountId: string;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAIServer({ models: ["tiny"] });
    gatewayHome = await tempHome("gbt-tools-gw-");
    await mkdir(join(gatewayHome, "config"), { recursive: true });
    await writeFile(
      join(gatewayHome, "config", "gateway.json"),
      JSON.stringify({
        allowPrivateNodes: true,
        routing: { rampUpDays: 0 },
        verification: { enabled: false },
      }),
    );
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    const gatewayUrl = String(gateway.first.url);
    const nodeHome = await tempHome("gbt-tools-node-");
    const setup = await runCli(
      ["setup", "--yes", "--owner", TEST_OWNER, "--backend", "openai", "--backend-url", fake.url],
      {
        GBT_HOME: nodeHome,
      },
    );
    expect(setup.exitCode, setup.stderr).toBe(0);
    node = await startServeProcess(["--gateway", gatewayUrl], { GBT_HOME: nodeHome });
    const adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
    const until = Date.now() + 30_000;
    for (;;) {
      const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      if (((await response.json()) as { data: unknown[] }).data.length === 1) break;
      if (Date.now() > until) throw new Error(`the node did not register:\n${node.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const created = onlyJson<{ account: { id: string }; key: { key: string } }>(
      (await runCli(["gateway", "keys", "create", "tools", "--json"], { GBT_HOME: gatewayHome })).stdout,
    );
    accountId = created.account.id;
    client = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: created.key.key, maxRetries: 0 });
  }, 120_000);

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await gateway?.stop("SIGKILL");
    await fake?.close();
  });

  it("runs a tool-calling loop, streamed and whole, and settles each request from a valid receipt", async () => {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "What is the weather in Paris?" },
    ];
    // Streamed: the call arrives in fragments, as OpenAI streams it.
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages,
      tools: [weather],
      stream: true,
    });
    let id = "";
    let args = "";
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta?.tool_calls ?? []) {
        id = call.id ?? id;
        args += call.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect([finish, args]).toEqual(["tool_calls", '{"city":"Paris"}']);
    messages.push({
      role: "assistant",
      content: null,
      tool_calls: [{ id, type: "function", function: { name: "get_weather", arguments: args } }],
    });
    messages.push({ role: "tool", tool_call_id: id, content: '{"celsius":21}' });
    // Whole: the model answers with the tool's result.
    const answer = await client.chat.completions.create({ model: "tiny", messages, tools: [weather] });
    expect(answer.choices[0]?.message.content).toBe("Hello, world!");
    const sent = fake.requests.filter((r) => r.path.endsWith("/chat/completions")).at(-1)?.body as {
      messages: { role: string; tool_call_id?: string }[];
    };
    expect(sent.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool"]);
    expect(sent.messages[2]?.tool_call_id).toBe(id);

    await expect
      .poll(() => {
        const db = new Database(join(gatewayHome, "data", "gateway", "gateway.db"), { readonly: true });
        try {
          return db
            .prepare(
              "SELECT completion_tokens, receipt_status FROM usage_records WHERE account_id = ? ORDER BY created_at",
            )
            .all(accountId);
        } finally {
          db.close();
        }
      })
      .toEqual([
        { completion_tokens: 4, receipt_status: "valid" },
        { completion_tokens: 4, receipt_status: "valid" },
      ]);
  });
});
