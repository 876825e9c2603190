import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  REQUEST_ID_HEADER,
  verifyObject,
} from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAICompatibleBackend } from "../backends/openai-compatible.js";
import type { Backend } from "../backends/types.js";
import { type GatewayLink, startGatewayLink } from "../gateway-link.js";
import { startFakeOpenAIServer } from "../testing/fake-openai-server.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, type NodeServerOptions, startNodeServer } from "./node-server.js";

const CHAIN_ID = 31_337;
const logger = pino({ level: "silent" });
const nodeAccount = privateKeyToAccount(generatePrivateKey());
const gatewayAccount = privateKeyToAccount(generatePrivateKey());
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The smallest gateway a link registers with: info, register (one fixed token), heartbeat. */
async function linkedGateway(): Promise<{ link: GatewayLink; token: string }> {
  const token = randomBytes(32).toString("base64url");
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const reply =
        req.url === GATEWAY_INFO_PATH
          ? { address: gatewayAccount.address, chainId: CHAIN_ID, heartbeatIntervalMs: 60_000 }
          : req.url === GATEWAY_REGISTER_PATH
            ? { instanceId: "instance-1", linkToken: token, heartbeatIntervalMs: 60_000 }
            : req.url === GATEWAY_HEARTBEAT_PATH
              ? {}
              : null;
      res.writeHead(reply ? 200 : 404, { "content-type": "application/json" }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const link = startGatewayLink({
    gatewayUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    account: nodeAccount,
    nodeUrl: "http://127.0.0.1:8787",
    capacity: 2,
    chainId: CHAIN_ID,
    models: async () => [{ id: "scripted" }],
    backend: { kind: "embedded" },
    inFlight: () => 0,
    health: async () => ({ ok: true }),
    latestBenchmark: () => null,
    logger,
  });
  cleanups.push(() => link.stop());
  await link.ready;
  return { link, token };
}

async function serve(backend: Backend, extra: Partial<NodeServerOptions> = {}): Promise<NodeServer> {
  const server = await startNodeServer({ backend, logger, capacity: 2, ...extra });
  cleanups.push(() => server.close(100));
  return server;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return new Promise<{
    status: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
  }>((resolve, reject) => {
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
    req.end(JSON.stringify(body));
  });
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: "scripted",
  messages: [{ role: "user", content: "hello there" }],
  max_tokens: 5,
  ...extra,
});

const verifyReceipt = (value: unknown) =>
  verifyObject(value, {
    kind: "UsageReceipt",
    chainId: CHAIN_ID,
    audience: gatewayAccount.address,
    allowedSigners: [nodeAccount.address],
  });

describe("node server: pooled traffic from the gateway", () => {
  it("signs a receipt for a whole response, in a header, with the response's usage and the gateway's id", async () => {
    const { link, token } = await linkedGateway();
    const server = await serve(createScriptedBackend({ tokens: ["a"] }), { gatewayLink: link });
    const response = await post(server.url, chat(), {
      authorization: `Bearer ${token}`,
      [REQUEST_ID_HEADER]: "gw-req:42",
    });
    expect(response.status).toBe(200);
    const usage = JSON.parse(response.body).usage;
    const header = response.headers[RECEIPT_HEADER];
    expect(typeof header).toBe("string");
    const receipt = await verifyReceipt(
      JSON.parse(Buffer.from(header as string, "base64url").toString("utf8")),
    );
    expect(receipt.message).toMatchObject({
      requestId: "gw-req:42",
      model: "scripted",
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
    });
    expect(receipt.message.durationMs).toBeGreaterThanOrEqual(receipt.message.ttftMs);
    expect(receipt.payload).toMatchObject({
      stream: false,
      finishReason: "length",
      backend: { source: "scripted" },
    });
  });

  it("ends a pooled stream with exactly one receipt line right before [DONE]", async () => {
    const { link, token } = await linkedGateway();
    const backend = createScriptedBackend({ tokens: ["x", "y"] });
    const server = await serve(backend, { gatewayLink: link });
    const response = await post(server.url, chat({ stream: true, max_tokens: 7 }), {
      authorization: `Bearer ${token}`,
      [REQUEST_ID_HEADER]: "stream-1",
    });
    expect(response.status).toBe(200);
    expect(response.headers[RECEIPT_HEADER]).toBeUndefined();
    const events = response.body.split("\n\n").filter((e) => e !== "");
    const receipts = events.filter((e) => e.startsWith(RECEIPT_SSE_PREFIX));
    expect(receipts).toHaveLength(1);
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(events.at(-2)).toBe(receipts[0]);
    const receipt = await verifyReceipt(JSON.parse((receipts[0] as string).slice(RECEIPT_SSE_PREFIX.length)));
    const generated = events.filter((e) => e.includes('"content":"x"') || e.includes('"content":"y"')).length;
    expect(generated).toBe(7);
    expect(receipt.message).toMatchObject({ requestId: "stream-1", completionTokens: 7 });
    expect(backend.finished).toEqual([{ reason: "length", completionTokens: 7 }]);
    expect(receipt.payload).toMatchObject({ stream: true, finishReason: "length" });
  });

  it("lets the link token through where API keys are required, and refuses a wrong one with 401", async () => {
    const { link, token } = await linkedGateway();
    const keys = { verify: (key: string) => key === "gbt_sk_good" };
    const server = await serve(createScriptedBackend(), {
      gatewayLink: link,
      requireApiKey: true,
      apiKeys: keys as never,
    });
    const ok = await post(server.url, chat(), {
      authorization: `Bearer ${token}`,
      [REQUEST_ID_HEADER]: "r-1",
    });
    expect(ok.status).toBe(200);
    const wrong = await post(server.url, chat(), {
      authorization: `Bearer ${randomBytes(32).toString("base64url")}`,
      [REQUEST_ID_HEADER]: "r-2",
    });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.body).error.code).toBe("invalid_api_key");
  });

  it("gives non-pooled requests no receipt, and changes nothing for them", async () => {
    const { link } = await linkedGateway();
    const keys = { verify: (key: string) => key === "gbt_sk_good" };
    const server = await serve(createScriptedBackend(), {
      gatewayLink: link,
      requireApiKey: true,
      apiKeys: keys as never,
    });
    const whole = await post(server.url, chat(), {
      authorization: "Bearer gbt_sk_good",
      [REQUEST_ID_HEADER]: "!bad",
    });
    expect(whole.status).toBe(200);
    expect(whole.headers[RECEIPT_HEADER]).toBeUndefined();
    const stream = await post(server.url, chat({ stream: true }), { authorization: "Bearer gbt_sk_good" });
    expect(stream.status).toBe(200);
    expect(stream.body).not.toContain(RECEIPT_SSE_PREFIX.trim());
    expect(stream.body.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("answers 400 invalid_value to a pooled request with a missing or malformed request id", async () => {
    const { link, token } = await linkedGateway();
    const backend = createScriptedBackend();
    const server = await serve(backend, { gatewayLink: link });
    for (const id of [undefined, "", "has space", "x".repeat(129), "-leading", "semi;colon"]) {
      const response = await post(server.url, chat(), {
        authorization: `Bearer ${token}`,
        ...(id !== undefined ? { [REQUEST_ID_HEADER]: id } : {}),
      });
      expect({ id, status: response.status }).toEqual({ id, status: 400 });
      expect(JSON.parse(response.body).error).toMatchObject({
        code: "invalid_value",
        param: REQUEST_ID_HEADER,
      });
    }
    expect(backend.received).toHaveLength(0);
  });

  it("still answers when the receipt cannot be signed, without a receipt", async () => {
    const failing = {
      isLinkToken: (token: string) => token === "link-token-of-a-test-double-000000",
      signReceipt: async () => {
        throw new Error("key unavailable");
      },
    };
    const server = await serve(createScriptedBackend(), { gatewayLink: failing });
    const headers = { authorization: "Bearer link-token-of-a-test-double-000000", [REQUEST_ID_HEADER]: "r1" };
    const whole = await post(server.url, chat(), headers);
    expect(whole.status).toBe(200);
    expect(whole.headers[RECEIPT_HEADER]).toBeUndefined();
    const stream = await post(server.url, chat({ stream: true }), headers);
    expect(stream.body).not.toContain(RECEIPT_SSE_PREFIX.trim());
    expect(stream.body.endsWith("data: [DONE]\n\n")).toBe(true);
  });
});

describe("node server: receipts of a relayed backend that reports no usage", () => {
  it.each([
    [true, undefined],
    [false, "estimate"],
  ])("usage reported: %s → the receipt says %s", async (reported, said) => {
    const fake = await startFakeOpenAIServer({ models: ["tiny"], usage: reported, timings: false });
    cleanups.push(() => fake.close());
    const { link, token } = await linkedGateway();
    const server = await serve(createOpenAICompatibleBackend({ baseURL: fake.url }), { gatewayLink: link });
    const headers = { authorization: `Bearer ${token}` };
    const body = { model: "tiny", messages: [{ role: "user", content: "hello there" }] };
    const whole = await post(server.url, body, { ...headers, [REQUEST_ID_HEADER]: "gw-req:w" });
    expect(whole.status).toBe(200);
    const wholeReceipt = await verifyReceipt(
      JSON.parse(Buffer.from(whole.headers[RECEIPT_HEADER] as string, "base64url").toString("utf8")),
    );
    const streamed = await post(
      server.url,
      { ...body, stream: true },
      { ...headers, [REQUEST_ID_HEADER]: "gw-req:s" },
    );
    const line = streamed.body.split("\n").find((l) => l.startsWith(RECEIPT_SSE_PREFIX)) as string;
    const streamReceipt = await verifyReceipt(JSON.parse(line.slice(RECEIPT_SSE_PREFIX.length)));
    for (const receipt of [wholeReceipt, streamReceipt]) {
      // "Hello, world!": four tokens as the server counts them, four content events or 13 characters as the node does.
      expect(receipt.message.completionTokens).toBe(4);
      expect(receipt.message.promptTokens).toBeGreaterThan(0);
      expect((receipt.payload as { usage?: string }).usage).toBe(said);
    }
    // The consumer sees no usage chunk it did not ask for, and none is made up for it.
    expect(streamed.body).not.toContain('"usage":{');
  });
});
