/**
 * The node's OpenAI-compatible HTTP server: `/v1/chat/completions` (SSE streaming or whole), the
 * hot path, on raw node:http; every other route (`/v1/models`, `/healthz`, `/metrics`, the
 * agent's `/agent/*`) on Hono (node-routes.ts). Streams are written through as the backend
 * produces them, never buffered; response headers wait for the first backend event so that early
 * failures (unknown model, context too long, busy) get real HTTP statuses. A client disconnect
 * aborts generation and frees the slot.
 *
 * Requests bearing the gateway's link token are pooled traffic: each one the node completes gets a
 * signed UsageReceipt (a header on whole responses, one SSE comment line before `[DONE]` on streams).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { AgentEndpoint } from "@gbt/agent";
import {
  guardServer,
  HttpError,
  isLoopbackHost,
  nodePaths,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  REQUEST_ID_HEADER,
  type ReceiptTimings,
  readBody,
  type ServerGuardOptions,
  type SignedObject,
  SSE_DONE_EVENT,
  sendError,
  sendJson,
  toHttpError,
} from "@gbt/protocol";
import { getRequestListener } from "@hono/node-server";
import type { Logger } from "pino";
import {
  addToolCallEvent,
  type Backend,
  type BackendTimings,
  type ChatStreamEvent,
  type FinishReason,
  type ModelCapabilities,
  type ToolCall,
  type Usage,
} from "../backends/types.js";
import type { SetupController } from "../claim/setup-controller.js";
import type { GatewayLink } from "../gateway-link.js";
import type { ApiKeyStore } from "./api-keys.js";
import { type Need, parseChatCompletionRequest, unsupportedFor } from "./chat-request.js";
import {
  type InferenceContext,
  inferenceRoutes,
  type RouteHandler,
  relayOpenAI,
  type Slot,
} from "./inference-routes.js";
import { createNodeAuth, invalidApiKey } from "./node-auth.js";
import { createNodeMetrics, type NodeMetrics } from "./node-metrics.js";
import { nodeRoutes } from "./node-routes.js";

export interface NodeServerOptions {
  backend: Backend;
  host?: string;
  port?: number;
  /** Chat completions generated at once; more get 429 with Retry-After. */
  capacity: number;
  /** Local API keys; when `requireApiKey` is set every route but /healthz needs one. */
  apiKeys?: ApiKeyStore;
  requireApiKey?: boolean;
  logger: Logger;
  /** Largest accepted request body (default 4 MiB). */
  maxBodyBytes?: number;
  /** Setup mode of an unclaimed node: /setup, /setup/info, POST /setup/claim (loopback peers only). */
  setup?: SetupController;
  /** The most pooled requests admitted now (network mode's limits; default the capacity). */
  pooledLimit?: () => number;
  /** The gateway link: recognises pooled traffic by its token and signs its receipts. */
  gatewayLink?: Pick<GatewayLink, "isLinkToken" | "signReceipt">;
  /** The node agent behind `/agent/*` (@gbt/agent's routes); absent, those routes answer 404. */
  agent?: AgentEndpoint;
  /** Serve `/agent/*` on a non-loopback listener too (default: loopback only). */
  agentOnAnyHost?: boolean;
  /** Socket limits (timeouts, connection caps); default DEFAULT_SERVER_GUARD. */
  guard?: Partial<ServerGuardOptions>;
}

/** The hot path, dispatched before anything else. */
const CHAT_PATH = nodePaths.chatCompletions;
const CHAT_PATH_WITH_QUERY = `${CHAT_PATH}?`;

export interface NodeServer {
  /** Serves one connection that did not come through the listener (a tunnel of the outbound link). */
  acceptConnection(connection: Duplex): void;
  readonly url: string;
  readonly metrics: NodeMetrics;
  inFlight(): number;
  /** Drain switch: while on, new chat completions get 503 `draining` (in-flight ones finish). */
  setDraining(on: boolean): void;
  isDraining(): boolean;
  /** Stops accepting, lets in-flight work finish up to `deadlineMs`, then aborts the rest. */
  close(deadlineMs?: number): Promise<void>;
}

function usageJson(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** llama.cpp-server-style timings, so clients can cross-check against the backend's own clock. */
function timingsJson(timings: BackendTimings | undefined) {
  if (!timings) return undefined;
  return {
    prompt_n: timings.promptTokens,
    prompt_ms: timings.promptMs,
    predicted_n: timings.decodeTokens,
    predicted_ms: timings.decodeMs,
    source: timings.source,
  };
}

const finishJson = (reason: FinishReason) => (reason === "abort" ? "stop" : reason);

/** A streamed tool-call event as OpenAI's `delta.tool_calls`: the call's start (id, name), then argument fragments. */
function toolCallDelta(event: Extract<ChatStreamEvent, { type: "tool_call" }>) {
  return {
    tool_calls: [
      event.id !== undefined || event.name !== undefined
        ? {
            index: event.index,
            ...(event.id !== undefined ? { id: event.id } : {}),
            type: "function",
            function: {
              ...(event.name !== undefined ? { name: event.name } : {}),
              arguments: event.arguments,
            },
          }
        : { index: event.index, function: { arguments: event.arguments } },
    ],
  };
}

/** The gateway's request ids: they become the receipt's requestId, so they must be identifiers. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function pooledRequestId(req: IncomingMessage): string {
  const value = req.headers[REQUEST_ID_HEADER];
  if (typeof value !== "string" || !REQUEST_ID_PATTERN.test(value)) {
    throw new HttpError(
      "invalid_value",
      `Pooled requests need a ${REQUEST_ID_HEADER} header of 1–128 letters, digits or . _ : - (starting with a letter or digit).`,
      REQUEST_ID_HEADER,
    );
  }
  return value;
}

function receiptTimings(stream: boolean, final: Extract<ChatStreamEvent, { type: "done" }>): ReceiptTimings {
  const t = final.timings;
  return {
    stream,
    finishReason: final.finishReason,
    ...(final.usageEstimated ? { usage: "estimate" as const } : {}),
    backend:
      t && t.promptMs !== undefined && t.decodeMs !== undefined
        ? { promptMs: Math.max(0, t.promptMs), decodeMs: Math.max(0, t.decodeMs), source: t.source }
        : null,
  };
}

/** Starts the node server; resolves once it listens. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const { backend, logger, capacity } = options;
  const maxBody = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const metrics = createNodeMetrics();
  const active = new Set<AbortController>();
  /** Set by close(): the server is going away. */
  let draining = false;
  /** Set by setDraining(): the node takes no new work until resumed. */
  let drained = false;
  const agentServed =
    options.agent !== undefined &&
    (options.agentOnAnyHost === true || isLoopbackHost(options.host ?? "127.0.0.1"));

  const link = options.gatewayLink;
  const auth = createNodeAuth(options);

  /** Signs the receipt of a pooled request; null (logged) when signing fails, so the answer still goes out. */
  async function signReceipt(
    requestId: string,
    model: string,
    stream: boolean,
    final: Extract<ChatStreamEvent, { type: "done" }>,
    ttftMs: number,
    durationMs: number,
  ): Promise<SignedObject<"UsageReceipt"> | null> {
    if (!link) return null;
    try {
      return await link.signReceipt({
        requestId,
        model,
        promptTokens: final.usage.promptTokens,
        completionTokens: final.usage.completionTokens,
        ttftMs,
        durationMs,
        timings: receiptTimings(stream, final),
      });
    } catch (error) {
      logger.error({ err: error, requestId, model }, "cannot sign the usage receipt; answering without it");
      return null;
    }
  }

  const overCapacity = () =>
    new HttpError("over_capacity", `The node is at capacity (${capacity} requests).`, null, {
      "retry-after": "1",
    });

  // What each model can do here, from the backend's list (refreshed at most every few seconds).
  const capabilities = new Map<string, ModelCapabilities | undefined>();
  let listedAt = Number.NEGATIVE_INFINITY;
  let listing: Promise<void> | null = null;
  const CAPABILITIES_TTL_MS = 30_000;
  const UNKNOWN_MODEL_RELIST_MS = 2_000;
  function relist(): Promise<void> {
    listing ??= backend
      .listModels()
      .then((models) => {
        capabilities.clear();
        for (const model of models) capabilities.set(model.id, model.capabilities);
        listedAt = performance.now();
      })
      .catch((error: unknown) => {
        logger.warn({ err: error }, "cannot list the backend's models for their capabilities");
      })
      .finally(() => {
        listing = null;
      });
    return listing;
  }
  /** The 400 for the first need the model cannot meet; nothing when it can, or when the model is unknown (the backend answers that). */
  function refusalFor(model: string, needs: ReadonlyArray<{ need: Need; param: string }>): HttpError | null {
    if (!capabilities.has(model)) return null;
    const refused = unsupportedFor(needs, capabilities.get(model), model, backend.kind);
    return refused === null ? null : new HttpError("unsupported_parameter", refused.message, refused.param);
  }
  async function refuseUnsupported(model: string, needs: ReadonlyArray<{ need: Need; param: string }>) {
    const age = performance.now() - listedAt;
    if (age > CAPABILITIES_TTL_MS || (!capabilities.has(model) && age > UNKNOWN_MODEL_RELIST_MS))
      await relist();
    const refused = refusalFor(model, needs);
    if (refused) throw refused;
  }

  /**
   * Pooled requests at once, under `pooledLimit` (network mode's share, maximum and schedule):
   * beyond it a pooled request gets 429 (the gateway routes it elsewhere) and local keys keep the rest.
   */
  let pooledActive = 0;
  const enterPooled = () => {
    const limit = options.pooledLimit?.() ?? capacity;
    if (pooledActive >= limit) {
      throw new HttpError(
        "over_capacity",
        limit === 0
          ? "The node takes no pooled requests now (outside its network schedule)."
          : `The node takes at most ${limit} pooled requests at once.`,
        null,
        { "retry-after": "1" },
      );
    }
    pooledActive += 1;
  };

  /** A capacity slot for one request: aborted when its client leaves, freed exactly once. */
  function openSlot(
    res: ServerResponse,
    started: number,
    route: string,
    requestId: string | undefined,
  ): Slot {
    if (active.size >= capacity) throw overCapacity();
    const pooled = requestId !== undefined;
    if (pooled) enterPooled();
    const controller = new AbortController();
    active.add(controller);
    metrics.inFlight.set(active.size);
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new Error("client disconnected"));
    };
    res.on("close", onClose);
    let ttftMs = -1;
    return {
      signal: controller.signal,
      token() {
        if (ttftMs < 0) {
          ttftMs = performance.now() - started;
          metrics.ttft.observe(ttftMs / 1000);
        }
      },
      receipt(model, stream, final) {
        if (requestId === undefined) return Promise.resolve(null);
        const durationMs = performance.now() - started;
        return signReceipt(requestId, model, stream, final, ttftMs < 0 ? durationMs : ttftMs, durationMs);
      },
      close(model, stream, final) {
        res.off("close", onClose);
        if (active.delete(controller) && pooled) pooledActive -= 1;
        metrics.inFlight.set(active.size);
        metrics.duration.observe((performance.now() - started) / 1000);
        if (final) {
          metrics.tokens.inc({ type: "prompt" }, final.usage.promptTokens);
          metrics.tokens.inc({ type: "completion" }, final.usage.completionTokens);
          logger.info(
            {
              ...(requestId !== undefined ? { requestId } : {}),
              route,
              model,
              stream,
              ...final.usage,
              finish: final.finishReason,
              ms: Math.round(performance.now() - started),
            },
            "inference request",
          );
        }
      },
    };
  }

  const context: InferenceContext = { backend, logger, metrics, open: openSlot, refuseUnsupported };
  const extra = inferenceRoutes(context);

  /** What every inference route checks first: the node takes work, the pooled id, a JSON body. */
  async function readRequest(
    req: IncomingMessage,
    pooled: boolean,
  ): Promise<{ body: unknown; requestId?: string }> {
    if (draining) {
      throw new HttpError("shutting_down", "The node is shutting down.", null, {
        "retry-after": "5",
      });
    }
    if (drained) {
      throw new HttpError("draining", "The node is draining: it takes no new requests.", null, {
        "retry-after": "30",
      });
    }
    const requestId = pooled ? pooledRequestId(req) : undefined;
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new HttpError("invalid_json", "The request body is not valid JSON.");
    }
    return requestId === undefined ? { body } : { body, requestId };
  }

  async function handleChat(
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    pooled: boolean,
  ): Promise<void> {
    const { body, requestId } = await readRequest(req, pooled);
    if (backend.relay !== undefined) {
      await relayOpenAI(context, backend.relay, "chat", res, body, started, requestId);
      return;
    }
    const parsed = parseChatCompletionRequest(body);
    if (!parsed.ok) throw new HttpError("invalid_value", parsed.message, parsed.param || null);
    const { request, stream, includeUsage, needs } = parsed.value;
    // The hot path stays synchronous while the model's capabilities are known and fresh.
    if (performance.now() - listedAt > CAPABILITIES_TTL_MS || !capabilities.has(request.model)) {
      await refuseUnsupported(request.model, needs);
    } else {
      const refused = refusalFor(request.model, needs);
      if (refused) throw refused;
    }
    if (active.size >= capacity) throw overCapacity();
    if (pooled) enterPooled();
    const controller = new AbortController();
    active.add(controller);
    metrics.inFlight.set(active.size);
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new Error("client disconnected"));
    };
    res.on("close", onClose);
    const id = `chatcmpl-${randomBytes(12).toString("base64url")}`;
    const created = Math.floor(Date.now() / 1000);
    const events = backend.chatStream({ ...request, signal: controller.signal })[Symbol.asyncIterator]();
    try {
      // Wait for the first event before answering, so that early errors get a real status.
      const first = await events.next();
      let ttftObserved = false;
      let ttftMs = -1;
      const observeToken = () => {
        if (!ttftObserved) {
          ttftObserved = true;
          ttftMs = performance.now() - started;
          metrics.ttft.observe(ttftMs / 1000);
        }
      };
      /** Pooled requests only: the signed receipt of a finished completion, or null. */
      const receiptOf = (done: Extract<ChatStreamEvent, { type: "done" }>) => {
        const durationMs = performance.now() - started;
        return signReceipt(
          requestId as string,
          request.model,
          stream,
          done,
          ttftMs < 0 ? durationMs : ttftMs,
          durationMs,
        );
      };
      let final: Extract<ChatStreamEvent, { type: "done" }> | undefined;
      if (stream) {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
          "x-request-id": id,
        });
        // The stream follows protocol's SSE layout (api/node/sse-layout.ts), which the gateway counts
        // content events by: role chunk, content chunks, finish chunk, [usage chunk], [receipt], [DONE].
        // The constant part of every chunk is built once; per token only the text is serialised.
        const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(
          request.model,
        )},"choices":[{"index":0,"delta":`;
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          `${head}${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? "null" : `"${finish}"`}}]}\n\n`;
        const contentChunk = (text: string) =>
          `${head}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
        res.write(chunk({ role: "assistant", content: "" }, null)); // 1. role
        let step = first;
        try {
          while (!step.done) {
            const event = step.value;
            if (event.type === "delta") {
              observeToken();
              res.write(contentChunk(event.text)); // 2. content, one per backend delta
            } else if (event.type === "tool_call") {
              observeToken();
              res.write(chunk(toolCallDelta(event), null)); // 2. content: a call's start or a fragment of its arguments
            } else {
              final = event;
              break;
            }
            step = await events.next();
          }
        } catch (error) {
          const http = toHttpError(error, "node", "node server");
          res.end(
            `data: ${JSON.stringify({ error: { message: http.message, type: http.type, code: http.code } })}\n\n`,
          );
          throw Object.assign(http, { alreadySent: true });
        }
        if (final && final.finishReason !== "abort") {
          res.write(chunk({}, finishJson(final.finishReason))); // 3. finish
          if (includeUsage) {
            // 4. usage, only when asked for
            const timings = timingsJson(final.timings);
            res.write(
              `data: ${JSON.stringify({
                id,
                object: "chat.completion.chunk",
                created,
                model: request.model,
                choices: [],
                usage: usageJson(final.usage),
                ...(timings ? { timings } : {}),
              })}\n\n`,
            );
          }
          if (requestId !== undefined) {
            // 5. the receipt: a comment, not an event
            const receipt = await receiptOf(final);
            if (receipt) res.write(`${RECEIPT_SSE_PREFIX}${JSON.stringify(receipt)}\n\n`);
          }
          res.end(SSE_DONE_EVENT); // 6.
        } else {
          res.end();
        }
      } else {
        let text = "";
        const calls: ToolCall[] = [];
        let step = first;
        while (!step.done) {
          const event = step.value;
          if (event.type === "delta") {
            observeToken();
            text += event.text;
          } else if (event.type === "tool_call") {
            observeToken();
            addToolCallEvent(calls, event);
          } else {
            final = event;
            break;
          }
          step = await events.next();
        }
        if (!final) throw new Error("backend stream ended without a final event");
        if (final.finishReason !== "abort") {
          const timings = timingsJson(final.timings);
          const receipt = requestId !== undefined ? await receiptOf(final) : null;
          const toolCalls = calls.filter((call) => call !== undefined);
          sendJson(
            res,
            200,
            {
              id,
              object: "chat.completion",
              created,
              model: request.model,
              choices: [
                {
                  index: 0,
                  message:
                    toolCalls.length > 0
                      ? {
                          role: "assistant",
                          content: text === "" ? null : text,
                          tool_calls: toolCalls.map((call) => ({
                            id: call.id,
                            type: "function",
                            function: { name: call.name, arguments: call.arguments },
                          })),
                        }
                      : { role: "assistant", content: text },
                  logprobs: null,
                  finish_reason: finishJson(final.finishReason),
                },
              ],
              usage: usageJson(final.usage),
              ...(timings ? { timings } : {}),
            },
            receipt
              ? {
                  "x-request-id": id,
                  [RECEIPT_HEADER]: Buffer.from(JSON.stringify(receipt)).toString("base64url"),
                }
              : { "x-request-id": id },
          );
        }
      }
      if (final) {
        metrics.tokens.inc({ type: "prompt" }, final.usage.promptTokens);
        metrics.tokens.inc({ type: "completion" }, final.usage.completionTokens);
        logger.info(
          {
            id,
            ...(requestId !== undefined ? { requestId } : {}),
            model: request.model,
            stream,
            promptTokens: final.usage.promptTokens,
            completionTokens: final.usage.completionTokens,
            finish: final.finishReason,
            ms: Math.round(performance.now() - started),
          },
          "chat completion",
        );
      }
    } finally {
      // Close the backend's iterator even when we stopped early, so it frees its slot.
      await events.return?.().catch(() => undefined);
      res.off("close", onClose);
      if (active.delete(controller) && pooled) pooledActive -= 1;
      metrics.inFlight.set(active.size);
      metrics.duration.observe((performance.now() - started) / 1000);
    }
  }

  /** The hot path: checks who is asking, then generates; counted and answered here, not by Hono. */
  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const pooled = auth.isPooled(req.headers.authorization);
    if (!pooled && !auth.isAuthorized(req.headers.authorization)) throw invalidApiKey();
    if (req.method !== "POST")
      throw new HttpError("method_not_allowed", "Use POST.", null, { allow: "POST" });
    await handleChat(req, res, started, pooled);
  }

  /** The other inference routes: the same checks, then their handler. */
  async function inference(handler: RouteHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const pooled = auth.isPooled(req.headers.authorization);
    if (!pooled && !auth.isAuthorized(req.headers.authorization)) throw invalidApiKey();
    if (req.method !== "POST")
      throw new HttpError("method_not_allowed", "Use POST.", null, { allow: "POST" });
    const { body, requestId } = await readRequest(req, pooled);
    await handler(req, res, body, started, requestId);
  }
  const INFERENCE_ROUTES = new Map<string, { name: string; handler: RouteHandler }>([
    [nodePaths.embeddings, { name: "embeddings", handler: extra.embeddings }],
    [nodePaths.completions, { name: "completions", handler: extra.completions }],
    [nodePaths.responses, { name: "responses", handler: extra.responses }],
  ]);

  const routes = nodeRoutes({
    backend,
    capacity,
    metrics,
    auth,
    logger,
    agent: options.agent,
    agentServed,
    inFlight: () => active.size,
    draining: () => draining || drained,
    ...(options.setup ? { setup: options.setup } : {}),
  });
  // Hono's own Request/Response stay local to its routes: the process's globals are left as they are.
  const routesListener = getRequestListener(routes.fetch, { overrideGlobalObjects: false });

  /** Every failure of a raw route, answered once (unless the stream already said it) and counted. */
  const failed = (req: IncomingMessage, res: ServerResponse) => (error: unknown) => {
    const http = toHttpError(error, "node", "node server");
    if (http.status >= 500 && !(error instanceof HttpError))
      logger.error({ err: error, path: req.url }, "request failed");
    if (!(http as HttpError & { alreadySent?: boolean }).alreadySent) {
      if (!res.headersSent && res.getHeader("x-request-id") === undefined)
        res.setHeader("x-request-id", `err-${randomBytes(9).toString("base64url")}`);
      sendError(res, http);
    }
    metrics.requests.inc({ route: "error", status: String(http.status) });
  };

  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === CHAT_PATH || url.startsWith(CHAT_PATH_WITH_QUERY)) {
      chat(req, res)
        .then(() => metrics.requests.inc({ route: "chat", status: String(res.statusCode) }))
        .catch(failed(req, res));
      return;
    }
    const query = url.indexOf("?");
    const route = INFERENCE_ROUTES.get(query < 0 ? url : url.slice(0, query));
    if (route === undefined) {
      void routesListener(req, res);
      return;
    }
    inference(route.handler, req, res)
      .then(() => metrics.requests.inc({ route: route.name, status: String(res.statusCode) }))
      .catch(failed(req, res));
  });
  // Timeouts and connection caps at the socket: a slowloris or a pile of idle sockets cannot hold the node.
  guardServer(server, options.guard);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, backend: options.backend.kind, agent: agentServed }, "node server listening");

  return {
    url,
    acceptConnection(connection: Duplex) {
      if (draining) connection.destroy();
      else server.emit("connection", connection);
    },
    metrics,
    inFlight: () => active.size,
    setDraining(on) {
      drained = on;
      logger.info({ draining: on }, on ? "draining: new requests get 503" : "resumed: taking requests");
    },
    isDraining: () => drained || draining,
    async close(deadlineMs = 10_000) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const until = Date.now() + deadlineMs;
      while (active.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      for (const controller of active) controller.abort(new Error("server shutting down"));
      const grace = Date.now() + 2_000;
      while (active.size > 0 && Date.now() < grace) await new Promise((r) => setTimeout(r, 10));
      server.closeAllConnections();
      await closed;
    },
  };
}
