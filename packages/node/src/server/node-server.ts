/**
 * The node's OpenAI-compatible HTTP server on node:http: `/v1/models`,
 * `/v1/chat/completions` (SSE streaming or whole), `/healthz`, `/metrics`. Streams are written
 * through as the backend produces them, never buffered; response headers wait for the first
 * backend event so that early failures (unknown model, context too long, busy) get real HTTP
 * statuses. A client disconnect aborts generation and frees the slot.
 *
 * Requests bearing the gateway's link token are pooled traffic: each one the node completes gets a
 * signed UsageReceipt (a header on whole responses, one SSE comment line before `[DONE]` on streams).
 *
 * With an agent attached, `POST /agent/jobs` and `GET /agent/jobs/:id` take signed owner jobs: the
 * job's signature is their authentication, so they skip the local API keys, and they are served only
 * on a loopback listener unless `agentOnAnyHost` is set, or to the linked gateway (its link token),
 * which relays owners' jobs to managed nodes but cannot forge or alter them. The agent itself lives in @gbt/agent (which
 * depends on this package), so the server knows it only by the small structural type below.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  HttpError,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  REQUEST_ID_HEADER,
  type ReceiptTimings,
  readBody,
  type SignedObject,
  sendError,
  sendJson,
  toHttpError,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Backend, BackendTimings, ChatStreamEvent, FinishReason, Usage } from "../backends/types.js";
import type { GatewayLink } from "../gateway-link.js";
import type { ApiKeyStore } from "./api-keys.js";
import { parseChatCompletionRequest } from "./chat-request.js";
import { createNodeMetrics, type NodeMetrics } from "./node-metrics.js";

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
  /** The gateway link: recognises pooled traffic by its token and signs its receipts. */
  gatewayLink?: Pick<GatewayLink, "isLinkToken" | "signReceipt">;
  /** The node agent behind `/agent/jobs`; absent, those routes answer 404. */
  agent?: NodeAgentEndpoint;
  /** Serve `/agent/*` on a non-loopback listener too (default: loopback only). */
  agentOnAnyHost?: boolean;
}

/** What the server needs of the node agent (structurally @gbt/agent's Agent). */
export interface NodeAgentEndpoint {
  submit(body: Buffer): Promise<{ state: string; code?: string } & Record<string, unknown>>;
  status(jobId: string): unknown | null;
  /** The job types this agent accepts with their parameter schemas (`GET /agent/allowlist`). */
  allowlist(): unknown;
}

/** Largest accepted signed job body. */
const MAX_JOB_BODY_BYTES = 64 * 1024;

/** Rejection codes about who signed the job or when: answered 401, the rest of rejections 400. */
const AUTH_REJECTIONS = new Set([
  "SIGNATURE_INVALID",
  "UNKNOWN_SIGNER",
  "WRONG_AUDIENCE",
  "WRONG_CHAIN",
  "EXPIRED",
  "NOT_YET_VALID",
  "REPLAYED",
  "STALE_NONCE",
  "PAYLOAD_HASH_MISMATCH",
]);

/** The HTTP status of an agent outcome: executed jobs are 200 whatever their end, rejections 4xx. */
export function agentOutcomeStatus(outcome: { state: string; code?: string }): number {
  if (outcome.state !== "rejected") return 200;
  return outcome.code !== undefined && AUTH_REJECTIONS.has(outcome.code) ? 401 : 400;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface NodeServer {
  readonly url: string;
  readonly metrics: NodeMetrics;
  inFlight(): number;
  /** Drain switch: while on, new chat completions get 503 `draining` (in-flight ones finish). */
  setDraining(on: boolean): void;
  isDraining(): boolean;
  /** Stops accepting, lets in-flight work finish up to `deadlineMs`, then aborts the rest. */
  close(deadlineMs?: number): Promise<void>;
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
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

  const isPooled = (req: IncomingMessage): boolean => {
    if (!link) return false;
    const token = bearer(req);
    return token !== undefined && link.isLinkToken(token);
  };

  const authorized = (req: IncomingMessage): boolean => {
    if (!options.requireApiKey) return true;
    const key = bearer(req);
    return key !== undefined && options.apiKeys?.verify(key) === true;
  };

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

  async function handleChat(
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    pooled: boolean,
  ): Promise<void> {
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
    const parsed = parseChatCompletionRequest(body);
    if (!parsed.ok) throw new HttpError("invalid_value", parsed.message, parsed.param);
    if (active.size >= capacity) {
      throw new HttpError("over_capacity", `The node is at capacity (${capacity} requests).`, null, {
        "retry-after": "1",
      });
    }
    const { request, stream, includeUsage } = parsed.value;
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
        // The constant part of every chunk is built once; per token only the text is serialised.
        const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(
          request.model,
        )},"choices":[{"index":0,"delta":`;
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          `${head}${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? "null" : `"${finish}"`}}]}\n\n`;
        const contentChunk = (text: string) =>
          `${head}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
        res.write(chunk({ role: "assistant", content: "" }, null));
        let step = first;
        try {
          while (!step.done) {
            const event = step.value;
            if (event.type === "delta") {
              observeToken();
              res.write(contentChunk(event.text));
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
          res.write(chunk({}, finishJson(final.finishReason)));
          if (includeUsage) {
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
            const receipt = await receiptOf(final);
            if (receipt) res.write(`${RECEIPT_SSE_PREFIX}${JSON.stringify(receipt)}\n\n`);
          }
          res.end("data: [DONE]\n\n");
        } else {
          res.end();
        }
      } else {
        let text = "";
        let step = first;
        while (!step.done) {
          const event = step.value;
          if (event.type === "delta") {
            observeToken();
            text += event.text;
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
                  message: { role: "assistant", content: text },
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
      active.delete(controller);
      metrics.inFlight.set(active.size);
      metrics.duration.observe((performance.now() - started) / 1000);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const started = performance.now();
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const method = req.method ?? "GET";
    if (path === "/healthz" && method === "GET") {
      const health = await backend.health();
      const ok = health.ok && !draining && !drained;
      sendJson(res, ok ? 200 : 503, {
        status: ok ? "ok" : draining || drained ? "draining" : "backend_unhealthy",
        draining: draining || drained,
        backend: { kind: backend.kind, location: backend.location, ...health },
        inFlight: active.size,
        capacity,
      });
      return "healthz";
    }
    if (path === "/agent" || path.startsWith("/agent/")) {
      // Served to loopback callers, and on any listener to the gateway relaying an owner's job (its
      // link token): the agent verifies the signed job the same way whoever carried it.
      if (!options.agent || !(agentServed || isPooled(req))) {
        throw new HttpError("not_found", `No route ${method} ${path}.`);
      }
      return routeAgent(options.agent, req, res, path, method);
    }
    const pooled = isPooled(req);
    if (!pooled && !authorized(req)) {
      throw new HttpError(
        "invalid_api_key",
        "Missing or invalid API key (Authorization: Bearer gbt_sk_…).",
        null,
        {
          "www-authenticate": "Bearer",
        },
      );
    }
    if (path === "/v1/chat/completions") {
      if (method !== "POST")
        throw new HttpError("method_not_allowed", "Use POST.", null, {
          allow: "POST",
        });
      await handleChat(req, res, started, pooled);
      return "chat";
    }
    if (path === "/v1/models" && method === "GET") {
      const models = await backend.listModels();
      sendJson(res, 200, {
        object: "list",
        data: models.map((model) => ({
          id: model.id,
          object: "model",
          created: 0,
          owned_by: "gbt",
          ...(model.digest ? { digest: model.digest } : {}),
        })),
      });
      return "models";
    }
    if (path === "/metrics" && method === "GET") {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(text);
      return "metrics";
    }
    throw new HttpError("not_found", `No route ${method} ${path}.`);
  }

  async function routeAgent(
    agent: NodeAgentEndpoint,
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
  ): Promise<string> {
    if (path === "/agent/jobs") {
      if (method !== "POST")
        throw new HttpError("method_not_allowed", "Use POST.", null, {
          allow: "POST",
        });
      const body = await readBody(req, MAX_JOB_BODY_BYTES);
      const outcome = await agent.submit(body);
      sendJson(res, agentOutcomeStatus(outcome), outcome);
      return "agent_submit";
    }
    if (path === "/agent/allowlist" && method === "GET") {
      sendJson(res, 200, agent.allowlist());
      return "agent_allowlist";
    }
    const match = /^\/agent\/jobs\/([^/]{1,200})$/.exec(path);
    if (match?.[1] !== undefined && method === "GET") {
      const jobId = decodeURIComponent(match[1]);
      const outcome = agent.status(jobId);
      if (outcome === null || outcome === undefined) {
        throw new HttpError("not_found", `This node has no job ${jobId}.`);
      }
      sendJson(res, 200, outcome);
      return "agent_status";
    }
    throw new HttpError("not_found", `No route ${method} ${path}.`);
  }

  const server: Server = createServer((req, res) => {
    route(req, res)
      .then((name) => metrics.requests.inc({ route: name, status: String(res.statusCode) }))
      .catch((error: unknown) => {
        const http = toHttpError(error, "node", "node server");
        if (http.status >= 500 && !(error instanceof HttpError))
          logger.error({ err: error, path: req.url }, "request failed");
        if (!(http as HttpError & { alreadySent?: boolean }).alreadySent) sendError(res, http);
        metrics.requests.inc({ route: "error", status: String(http.status) });
      });
  });
  server.keepAliveTimeout = 65_000;

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
