/**
 * A node that speaks the real gateway link protocol (signed registration, heartbeats, link token,
 * signed usage receipts, OpenAI-compatible chat) without a model: it streams `tok0 tok1 …` at a
 * chosen pace. Its faults are switchable (refuse before headers, 500, 429, die mid-stream, stall,
 * inflate its receipts, sign with another key, serve another model than claimed), so the gateway's rules can be tested on real
 * sockets. It also answers `/v1/embeddings`, `/v1/completions` and `/v1/responses` in the node's
 * wire layout (whole and streamed, with receipts), and registers the capabilities it is given.
 * Used by the gateway's tests and its benchmark's paced upstream.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  type GatewayInfo,
  type ModelCapabilitiesDetails,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  REQUEST_ID_HEADER,
  type RegistrationResponse,
  type SignedObject,
  signObject,
} from "@gbt/protocol";
import type { PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

export interface FakeNodeFaults {
  /** Destroy the connection before any response. */
  dropBeforeHeaders?: boolean;
  /** Answer every chat with this status (500, 429…). */
  status?: number;
  /** With `status`: declare a long body, send a few bytes of it, and cut the connection. */
  cutBody?: boolean;
  /** Cut the connection after this many content chunks. */
  dieAfterTokens?: number;
  /** Stop sending (but keep the connection) after this many content chunks. */
  stallAfterTokens?: number;
  /** Multiply the completion tokens claimed in receipts. */
  inflateReceipt?: number;
  /** Sign receipts with this key instead of the node's. */
  receiptSigner?: PrivateKeyAccount;
  /** Send no receipt. */
  noReceipt?: boolean;
  /** Serve another model than the one claimed: every answer's text differs (`tik0 tik1 …`). */
  alterOutput?: boolean;
  // The hostile node's repertoire (the open-world tests).
  /** Answer every chat with this redirect (302 to this Location). */
  redirectTo?: string;
  /** Send 200 headers, then nothing (whole answers and streams alike). */
  stallAfterHeaders?: boolean;
  /** A whole answer of this many bytes (no content-length), written in 64 KiB pieces as the gateway reads. */
  hugeBody?: number;
  /** A stream of this many bytes with no event terminator, in 64 KiB pieces. */
  unterminatedStream?: number;
  /** Stream this many events with empty content between the role and the real content. */
  emptyEvents?: number;
  /** Multiply the usage a whole answer claims (completion_tokens). */
  inflateUsage?: number;
}

export interface FakeNodeOptions {
  models?: string[];
  capacity?: number;
  /** Completion tokens per request (default 8, or the request's max_tokens when smaller). */
  tokens?: number;
  /** Delay between chunks, ms (default 0). */
  tokenDelayMs?: number;
  /** Delay before the first chunk, ms (default 0). */
  firstTokenDelayMs?: number;
  faults?: FakeNodeFaults;
  account?: PrivateKeyAccount;
  /** Digests claimed per model in the registration (default: none). */
  modelDigests?: Record<string, string>;
  /** The backend reported in the registration (default `{ kind: "fake" }`). */
  backend?: { kind: string; version?: string };
  /** Registers with a signed benchmark record claiming this decode throughput (default: no record). */
  benchmarkTokPerSec?: number;
  /** The `gpu` of that record's payload, as a node's benchmark writes it (anything: the gateway checks it). */
  benchmarkGpu?: unknown;
  /** The capabilities registered for every model (default: none, which the gateway reads as chat only). */
  capabilities?: ModelCapabilitiesDetails;
}

/** One request the fake node received. */
export interface ServedRequest {
  requestId: string | null;
  pooled: boolean;
  /** The node path it came to. */
  path: string;
  /** Its JSON body as received. */
  body: Record<string, unknown>;
}

export interface FakeNode {
  readonly url: string;
  readonly account: PrivateKeyAccount;
  readonly faults: FakeNodeFaults;
  /** Requests received, every route (pooled ones carry the link token). */
  readonly served: ServedRequest[];
  linkToken: string | null;
  gateway: GatewayInfo | null;
  register(
    gatewayUrl: string,
    overrides?: { nonce?: number; capacity?: number; url?: string },
  ): Promise<Response>;
  /** The signed registration last sent (to replay it in tests). */
  lastRegistration: SignedObject<"NodeRegistration"> | null;
  heartbeat(
    gatewayUrl: string,
    overrides?: { seq?: number; signer?: PrivateKeyAccount; inFlight?: number; capacity?: number },
  ): Promise<Response>;
  inFlight(): number;
  close(): Promise<void>;
}

let sequence = Date.now();
const nextSequence = () => {
  sequence = Math.max(sequence + 1, Date.now());
  return sequence;
};

export async function startFakeNode(options: FakeNodeOptions = {}): Promise<FakeNode> {
  const account = options.account ?? privateKeyToAccount(generatePrivateKey());
  const models = options.models ?? ["fake-model"];
  const faults: FakeNodeFaults = options.faults ?? {};
  const served: FakeNode["served"] = [];
  let active = 0;
  const sockets = new Set<import("node:net").Socket>();

  const node: FakeNode = {
    url: "",
    account,
    faults,
    served,
    linkToken: null,
    gateway: null,
    lastRegistration: null,
    async register(gatewayUrl, overrides = {}) {
      const info = (await (await fetch(new URL(GATEWAY_INFO_PATH, gatewayUrl))).json()) as GatewayInfo;
      node.gateway = info;
      const now = Math.floor(Date.now() / 1000);
      const signed = await signObject(account, {
        kind: "NodeRegistration",
        chainId: info.chainId,
        message: {
          node: account.address,
          gateway: info.address,
          url: overrides.url ?? node.url,
          capacity: overrides.capacity ?? options.capacity ?? 4,
          nonce: overrides.nonce ?? nextSequence(),
          issuedAt: now,
          expiresAt: now + 60,
        },
        payload: {
          models: models.map((id) => ({
            id,
            ...(options.modelDigests?.[id] !== undefined ? { digest: options.modelDigests[id] } : {}),
            ...(options.capabilities !== undefined ? { capabilities: options.capabilities } : {}),
          })),
          backend: options.backend ?? { kind: "fake" },
          benchmark:
            options.benchmarkTokPerSec === undefined
              ? null
              : await signObject(account, {
                  kind: "BenchmarkRecord",
                  chainId: info.chainId,
                  message: {
                    recordId: randomUUID(),
                    node: account.address,
                    backend: options.backend?.kind ?? "fake",
                    modelDigest: options.modelDigests?.[models[0] ?? ""] ?? "none",
                    decodeTokPerSecMilli: Math.round(options.benchmarkTokPerSec * 1000),
                    eligibleCapacity: options.capacity ?? 4,
                    issuedAt: now,
                    expiresAt: now + 86_400,
                  },
                  payload: {
                    fake: true,
                    decodeTokPerSec: options.benchmarkTokPerSec,
                    ...(options.benchmarkGpu !== undefined ? { gpu: options.benchmarkGpu } : {}),
                  },
                }),
        },
      });
      node.lastRegistration = signed;
      const response = await fetch(new URL(GATEWAY_REGISTER_PATH, gatewayUrl), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(signed),
      });
      if (response.ok) {
        const body = (await response.clone().json()) as RegistrationResponse;
        node.linkToken = body.linkToken;
      }
      return response;
    },
    async heartbeat(gatewayUrl, overrides = {}) {
      const info = node.gateway as GatewayInfo;
      const signer = overrides.signer ?? account;
      const now = Math.floor(Date.now() / 1000);
      const signed = await signObject(signer, {
        kind: "Heartbeat",
        chainId: info.chainId,
        message: {
          node: signer.address,
          gateway: info.address,
          seq: overrides.seq ?? nextSequence(),
          inFlight: overrides.inFlight ?? active,
          issuedAt: now,
          expiresAt: now + 60,
        },
        payload: { models, capacity: overrides.capacity ?? options.capacity ?? 4, health: { ok: true } },
      });
      return fetch(new URL(GATEWAY_HEARTBEAT_PATH, gatewayUrl), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(signed),
      });
    },
    inFlight: () => active,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  async function receipt(requestId: string, model: string, promptTokens: number, completionTokens: number) {
    const info = node.gateway as GatewayInfo;
    const signer = faults.receiptSigner ?? account;
    const now = Math.floor(Date.now() / 1000);
    return signObject(signer, {
      kind: "UsageReceipt",
      chainId: info.chainId,
      message: {
        requestId,
        node: signer.address,
        gateway: info.address,
        model,
        promptTokens,
        completionTokens: Math.round(completionTokens * (faults.inflateReceipt ?? 1)),
        ttftMs: 0,
        durationMs: 0,
        issuedAt: now,
        expiresAt: now + 600,
      },
      payload: { stream: true, finishReason: "stop", backend: null },
    });
  }

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
      model: string;
      stream?: boolean;
      max_tokens?: number;
      stream_options?: { include_usage?: boolean };
    };
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const pooled = token !== undefined && token === node.linkToken;
    const requestId = (req.headers[REQUEST_ID_HEADER] as string | undefined) ?? null;
    served.push({ requestId, pooled, path: req.url ?? "", body: body as Record<string, unknown> });
    if (req.url !== "/v1/chat/completions") {
      await otherRoute(req.url ?? "", body as unknown as OtherBody, res, pooled, requestId ?? "");
      return;
    }
    if (faults.dropBeforeHeaders) {
      req.socket.destroy();
      return;
    }
    if (faults.redirectTo !== undefined) {
      res.writeHead(302, { location: faults.redirectTo, "content-type": "application/json" });
      res.end("{}");
      return;
    }
    if (faults.stallAfterHeaders) {
      res.writeHead(200, { "content-type": body.stream ? "text/event-stream" : "application/json" });
      res.flushHeaders();
      await new Promise((resolve) => res.on("close", resolve));
      return;
    }
    const flood = body.stream ? faults.unterminatedStream : faults.hugeBody;
    if (flood !== undefined) {
      res.writeHead(200, { "content-type": body.stream ? "text/event-stream" : "application/json" });
      const piece = Buffer.alloc(64 * 1024, body.stream ? "x" : " ");
      if (body.stream) piece.write('data: {"choices":[{"delta":{"content":"');
      else piece.write('{"choices":[{"message":{"content":"');
      let sent = 0;
      while (sent < flood && !res.destroyed) {
        sent += piece.length;
        if (!res.write(piece))
          await new Promise((resolve) => res.once("drain", resolve).once("close", resolve));
      }
      res.end();
      return;
    }
    if (faults.status !== undefined && faults.cutBody) {
      res.writeHead(faults.status, { "content-type": "application/json", "content-length": "4096" });
      res.write('{"error": {"message": "cut');
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    if (faults.status !== undefined) {
      if (options.firstTokenDelayMs)
        await new Promise((resolve) => setTimeout(resolve, options.firstTokenDelayMs));
      res.writeHead(faults.status, { "content-type": "application/json", "retry-after": "1" });
      res.end(
        JSON.stringify({ error: { message: "fault", type: "server_error", param: null, code: "fault" } }),
      );
      return;
    }
    if (!models.includes(body.model)) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            message: "no such model",
            type: "invalid_request_error",
            param: "model",
            code: "model_not_found",
          },
        }),
      );
      return;
    }
    const count = Math.min(options.tokens ?? 8, body.max_tokens ?? Number.POSITIVE_INFINITY);
    const word = faults.alterOutput ? "tik" : "tok";
    const promptTokens = 5;
    const id = `chatcmpl-${randomBytes(6).toString("hex")}`;
    const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
    await sleep(options.firstTokenDelayMs ?? 0);
    if (!body.stream) {
      await sleep((options.tokenDelayMs ?? 0) * count);
      const text = Array.from({ length: count }, (_, i) => `${word}${i} `).join("");
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (pooled && !faults.noReceipt) {
        headers[RECEIPT_HEADER] = Buffer.from(
          JSON.stringify(await receipt(requestId ?? "", body.model, promptTokens, count)),
        ).toString("base64url");
      }
      res.writeHead(200, headers);
      res.end(
        JSON.stringify({
          id,
          object: "chat.completion",
          created: 0,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: text },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: count * (faults.inflateUsage ?? 1),
            total_tokens: promptTokens + count * (faults.inflateUsage ?? 1),
          },
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(body.model)},"choices":[{"index":0,"delta":`;
    res.write(`${head}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`);
    for (let i = 0; i < (faults.emptyEvents ?? 0); i++) {
      res.write(`${head}{"content":""},"logprobs":null,"finish_reason":null}]}\n\n`);
    }
    for (let i = 0; i < count; i++) {
      if (i > 0) await sleep(options.tokenDelayMs ?? 0);
      if (faults.dieAfterTokens !== undefined && i >= faults.dieAfterTokens) {
        res.socket?.destroy();
        return;
      }
      if (faults.stallAfterTokens !== undefined && i >= faults.stallAfterTokens) {
        await new Promise((resolve) => res.on("close", resolve));
        return;
      }
      if (res.destroyed) return;
      res.write(`${head}{"content":"${word}${i} "},"logprobs":null,"finish_reason":null}]}\n\n`);
    }
    res.write(`${head}{},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
    if (body.stream_options?.include_usage) {
      res.write(
        `data: {"id":"${id}","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(body.model)},"choices":[],"usage":{"prompt_tokens":${promptTokens},"completion_tokens":${count},"total_tokens":${promptTokens + count}}}\n\n`,
      );
    }
    if (pooled && !faults.noReceipt) {
      res.write(
        `${RECEIPT_SSE_PREFIX}${JSON.stringify(await receipt(requestId ?? "", body.model, promptTokens, count))}\n\n`,
      );
    }
    res.end("data: [DONE]\n\n");
  }

  /** The node's other routes, in wire.md's layout (no faults but `dieAfterTokens` and `noReceipt`). */
  async function otherRoute(
    path: string,
    body: OtherBody,
    res: ServerResponse,
    pooled: boolean,
    requestId: string,
  ): Promise<void> {
    const count = Math.min(
      options.tokens ?? 8,
      body.max_tokens ?? body.max_output_tokens ?? Number.POSITIVE_INFINITY,
    );
    const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
    const signed = async (prompt: number, completion: number) =>
      pooled && !faults.noReceipt
        ? JSON.stringify(await receipt(requestId, body.model, prompt, completion))
        : null;
    const whole = async (answer: unknown, prompt: number, completion: number) => {
      const json = await signed(prompt, completion);
      res.writeHead(200, {
        "content-type": "application/json",
        ...(json !== null ? { [RECEIPT_HEADER]: Buffer.from(json).toString("base64url") } : {}),
      });
      res.end(JSON.stringify(answer));
    };
    const promptTokens = 5;
    if (path === "/v1/embeddings") {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const tokens = inputs.length * 3;
      await whole(
        {
          object: "list",
          data: inputs.map((_, index) => ({
            object: "embedding",
            index,
            // As OpenAI encodes them: little-endian float32s in base64, or a list of numbers.
            embedding:
              body.encoding_format === "base64"
                ? Buffer.from(new Float32Array(EMBEDDING).buffer).toString("base64")
                : EMBEDDING,
          })),
          model: body.model,
          usage: { prompt_tokens: tokens, total_tokens: tokens },
        },
        tokens,
        0,
      );
      return;
    }
    const words = Array.from({ length: count }, (_, i) => `tok${i} `);
    if (path === "/v1/completions") {
      const id = `cmpl-${randomBytes(6).toString("hex")}`;
      const usage = {
        prompt_tokens: promptTokens,
        completion_tokens: count,
        total_tokens: promptTokens + count,
      };
      if (!body.stream) {
        await whole(
          {
            id,
            object: "text_completion",
            created: 0,
            model: body.model,
            choices: [{ index: 0, text: words.join(""), logprobs: null, finish_reason: "length" }],
            usage,
          },
          promptTokens,
          count,
        );
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (text: string, finish: string | null) =>
        `data: ${JSON.stringify({ id, object: "text_completion", created: 0, model: body.model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] })}\n\n`;
      res.write(chunk("", null));
      for (const [i, word] of words.entries()) {
        await sleep(options.tokenDelayMs ?? 0);
        if (faults.dieAfterTokens !== undefined && i >= faults.dieAfterTokens) {
          res.socket?.destroy();
          return;
        }
        res.write(chunk(word, null));
      }
      res.write(chunk("", "length"));
      if (body.stream_options?.include_usage) {
        res.write(
          `data: ${JSON.stringify({ id, object: "text_completion", created: 0, model: body.model, choices: [], usage })}\n\n`,
        );
      }
      const json = await signed(promptTokens, count);
      if (json !== null) res.write(`${RECEIPT_SSE_PREFIX}${json}\n\n`);
      res.end("data: [DONE]\n\n");
      return;
    }
    if (path === "/v1/responses") {
      const id = `resp_${randomBytes(6).toString("hex")}`;
      const text = words.join("");
      const message = {
        type: "message",
        id: `msg_${id}`,
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      };
      const response = (status: string, output: unknown[], usage: unknown) => ({
        id,
        object: "response",
        created_at: 0,
        status,
        model: body.model,
        output,
        usage,
      });
      const usage = { input_tokens: promptTokens, output_tokens: count, total_tokens: promptTokens + count };
      if (!body.stream) {
        await whole(response("completed", [message], usage), promptTokens, count);
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      let sequence = 0;
      const event = (type: string, fields: Record<string, unknown>) =>
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
      res.write(event("response.created", { response: response("in_progress", [], null) }));
      res.write(event("response.in_progress", { response: response("in_progress", [], null) }));
      const item = { ...message, status: "in_progress", content: [] };
      res.write(event("response.output_item.added", { output_index: 0, item }));
      const part = { type: "output_text", text: "", annotations: [] };
      res.write(
        event("response.content_part.added", { item_id: item.id, output_index: 0, content_index: 0, part }),
      );
      for (const [i, word] of words.entries()) {
        await sleep(options.tokenDelayMs ?? 0);
        if (faults.dieAfterTokens !== undefined && i >= faults.dieAfterTokens) {
          res.socket?.destroy();
          return;
        }
        res.write(
          event("response.output_text.delta", {
            item_id: item.id,
            output_index: 0,
            content_index: 0,
            delta: word,
          }),
        );
      }
      res.write(
        event("response.output_text.done", { item_id: item.id, output_index: 0, content_index: 0, text }),
      );
      res.write(
        event("response.content_part.done", {
          item_id: item.id,
          output_index: 0,
          content_index: 0,
          part: { ...part, text },
        }),
      );
      res.write(event("response.output_item.done", { output_index: 0, item: message }));
      res.write(event("response.completed", { response: response("completed", [message], usage) }));
      const json = await signed(promptTokens, count);
      if (json !== null) res.write(`${RECEIPT_SSE_PREFIX}${json}\n\n`);
      res.end("data: [DONE]\n\n");
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        error: { message: "no such route", type: "invalid_request_error", param: null, code: "not_found" },
      }),
    );
  }

  const server: Server = createServer((req, res) => {
    if (NODE_ROUTES.has(req.url ?? "") && req.method === "POST") {
      active += 1;
      chat(req, res)
        .catch(() => res.destroy())
        .finally(() => {
          active -= 1;
        });
      return;
    }
    res.writeHead(404).end();
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (node as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return node;
}

/** The vector the fake node answers every embedding input with. */
const EMBEDDING = [0.25, -0.5, 0.75];

/** The routes the fake node serves. */
const NODE_ROUTES = new Set(["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]);

/** The fields of a non-chat request the fake node reads. */
interface OtherBody {
  model: string;
  stream?: boolean;
  max_tokens?: number;
  max_output_tokens?: number;
  input?: unknown;
  encoding_format?: string;
  stream_options?: { include_usage?: boolean };
}
