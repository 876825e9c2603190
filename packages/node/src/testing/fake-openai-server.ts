/**
 * A local stand-in for an OpenAI-compatible inference server in llama.cpp server's flavour, for
 * tests that cannot run one: `/health`, `/v1/models` (with llama.cpp's `meta`), and
 * `/v1/chat/completions` streamed as SSE `data:` lines (a first chunk with the role, one chunk per
 * token, a chunk with finish_reason, the usage chunk with empty choices when
 * `stream_options.include_usage` is set, `timings` on the last chunk, then `data: [DONE]`) or
 * whole. Errors use llama.cpp's `{"error": {code, message, type}}` body, including
 * `exceed_context_size_error`. Token timing is scripted, and the timings it reports are the
 * scripted ones, so a test knows them exactly. Every exchange is logged, including hang-ups.
 *
 * Tools, as llama.cpp's `--jinja` and OpenAI answer them: with `tools` (and `tool_choice` not
 * "none") and a last message that is not a `tool` result, the answer is a call of the first tool
 * (or the named one) with `toolArguments`, `finish_reason: "tool_calls"`; streamed, the call comes
 * as OpenAI streams it: one delta with its index, id, type and name and empty arguments, then the
 * arguments in fragments.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { exampleOf } from "./fake-ollama.js";

export interface FakeOpenAIServerOptions {
  /** Model ids served (default: ["tiny"]). Another id is a 404, as in llama.cpp's router mode and vLLM. */
  models?: string[];
  /** Accept any model id, as a single-model llama.cpp server does. */
  anyModel?: boolean;
  /** Pieces generated, one token each, then end of sequence (default: "Hello", ",", " world", "!"). */
  tokens?: string[];
  /** Prompt processing time in ms, slept before the first token and reported as timings.prompt_ms. */
  promptMs?: number;
  /** Time per generated token in ms; timings.predicted_ms is tokenMs × predicted_n. */
  tokenMs?: number;
  /** Prompt tokens of a chat (default: per message, ceil(characters / 4) + 4 for the template). */
  countPromptTokens?: (messages: Array<{ role: string; content: string }>) => number;
  /** The context size (n_ctx): a longer prompt is refused with exceed_context_size_error. */
  contextSize?: number;
  /** Require `Authorization: Bearer <apiKey>`, as `llama-server --api-key` does. */
  apiKey?: string;
  /** Requests generating at once beyond which the answer is 429, as a rate-limiting proxy in front would. */
  maxConcurrent?: number;
  /** Add llama.cpp's `timings` object (default true; false for servers such as vLLM). */
  timings?: boolean;
  /** Report usage (default true); false: no usage object and no usage chunk, as some servers do. */
  usage?: boolean;
  /** `/health` answers "ok" (200), "loading" (503, as while llama.cpp loads a model) or "absent" (404). */
  health?: "ok" | "loading" | "absent";
  /** Drop the connection after this many generated tokens, as when the server crashes. */
  failAfterTokens?: number;
  /** The arguments of a tool call, as JSON text (default `{"city":"Paris"}`), streamed four characters (a token) at a time. */
  toolArguments?: string;
}

/** One exchange as the fake saw it. */
export interface FakeOpenAIRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or undefined when there was none (or it was not JSON). */
  body: unknown;
  /** HTTP status answered. */
  status?: number;
  /** Every JSON object written: the SSE chunks of a stream (without [DONE]), or the one body. */
  sent: unknown[];
  /** "completed" when the whole answer was written; "disconnected" when the client hung up first. */
  ended: Promise<"completed" | "disconnected">;
}

export interface FakeOpenAIServer {
  /** Base URL with /v1, e.g. http://127.0.0.1:PORT/v1 (what an OpenAI client takes as baseURL). */
  url: string;
  /** The server root, e.g. http://127.0.0.1:PORT. */
  origin: string;
  /** Every exchange, in order of arrival. */
  readonly requests: FakeOpenAIRequest[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : resolve()));

function defaultCountPromptTokens(messages: Array<{ role: string; content: string }>): number {
  return messages.reduce((sum, message) => sum + Math.ceil(message.content.length / 4) + 4, 0);
}

/** llama.cpp's error body: `{"error": {"code", "message", "type"}}` plus any extra fields. */
function errorBody(code: number, type: string, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, type, ...extra } };
}

/** A rate, or null where llama.cpp's JSON would hold an infinity (nlohmann writes null). */
const perSecond = (count: number, ms: number) => (ms > 0 ? (1000 * count) / ms : null);

/** Text of a message content: a string, or the text parts of an array of content parts. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) =>
      part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string"
        ? (part as { text: string }).text
        : "",
    )
    .join("");
}

/**
 * Starts the fake on a loopback port chosen by the OS.
 *
 * Generation emits the scripted `tokens` in order and ends as at end of sequence (finish_reason
 * "stop"); `max_tokens` (or `max_completion_tokens`, `n_predict`) cuts it short ("length"); a
 * string in `stop` ends it before that string. A client that hangs up stops generation.
 */
export async function startFakeOpenAIServer(
  options: FakeOpenAIServerOptions = {},
): Promise<FakeOpenAIServer> {
  const models = options.models ?? ["tiny"];
  const tokens = options.tokens ?? ["Hello", ",", " world", "!"];
  const countPromptTokens = options.countPromptTokens ?? defaultCountPromptTokens;
  const withTimings = options.timings ?? true;
  const withUsage = options.usage ?? true;
  const created = Math.floor(Date.now() / 1000);
  const fingerprint = "b6700-fake";
  const requests: FakeOpenAIRequest[] = [];
  let generating = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify(errorBody(500, "server_error", String(error))));
      } else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    let resolveEnded: (outcome: "completed" | "disconnected") => void = () => undefined;
    const entry: FakeOpenAIRequest = {
      method: req.method ?? "GET",
      path: (req.url ?? "/").split("?")[0] ?? "/",
      headers: req.headers,
      body,
      sent: [],
      ended: new Promise((resolve) => {
        resolveEnded = resolve;
      }),
    };
    requests.push(entry);
    const reply = replyTo(res, entry);
    res.on("close", () => resolveEnded(res.writableFinished ? "completed" : "disconnected"));
    const { method, path } = entry;

    if (path === "/health" || path === "/v1/health") {
      if (options.health === "absent")
        return reply.json(404, errorBody(404, "not_found_error", "File Not Found"));
      if (options.health === "loading")
        return reply.json(503, errorBody(503, "unavailable_error", "Loading model"));
      return reply.json(200, { status: "ok" });
    }
    // llama.cpp checks the key on every route but /health.
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return reply.json(401, errorBody(401, "authentication_error", "Invalid API Key"));
    }
    if ((path === "/v1/models" || path === "/models") && method === "GET") {
      const data = models.map((id) => ({
        id,
        object: "model",
        created,
        owned_by: "llamacpp",
        meta: {
          vocab_type: 1,
          n_vocab: 356,
          n_ctx_train: options.contextSize ?? 2048,
          n_embd: 128,
          n_params: 400_000,
          size: 1_700_000,
        },
      }));
      return reply.json(200, { models: models.map((id) => ({ name: id, model: id })), object: "list", data });
    }
    if ((path === "/v1/chat/completions" || path === "/chat/completions") && method === "POST") {
      if (badJson)
        return reply.json(
          400,
          errorBody(400, "invalid_request_error", "Failed to parse the request body as JSON"),
        );
      return chatCompletion((body ?? {}) as Record<string, unknown>, reply);
    }
    if ((path === "/v1/embeddings" || path === "/embeddings") && method === "POST") {
      return embeddings((body ?? {}) as Record<string, unknown>, reply);
    }
    if ((path === "/v1/completions" || path === "/completions") && method === "POST") {
      return completion((body ?? {}) as Record<string, unknown>, reply);
    }
    return reply.json(404, errorBody(404, "not_found_error", "File Not Found"));
  }

  /** llama.cpp's `/v1/embeddings` (started with --embeddings): 8 deterministic numbers per input, float or base64. */
  function embeddings(request: Record<string, unknown>, reply: Reply) {
    const model = typeof request.model === "string" ? request.model : (models[0] ?? "model");
    if (!options.anyModel && !models.includes(model)) {
      return reply.json(404, errorBody(404, "not_found_error", `model '${model}' not found`));
    }
    const inputs = typeof request.input === "string" ? [request.input] : request.input;
    if (!Array.isArray(inputs) || inputs.some((input) => typeof input !== "string")) {
      return reply.json(
        400,
        errorBody(400, "invalid_request_error", "'input' must be a string or a list of strings"),
      );
    }
    const vectors = (inputs as string[]).map((text) => {
      const raw = Array.from({ length: 8 }, (_, i) => ((text.length * (i + 3)) % 17) / 17 - 0.5);
      const norm = Math.hypot(...raw) || 1;
      return raw.map((x) => x / norm);
    });
    const base64 = request.encoding_format === "base64";
    const tokens = (inputs as string[]).reduce(
      (sum, text) => sum + Math.max(1, Math.ceil(text.length / 4)),
      0,
    );
    reply.json(200, {
      model,
      object: "list",
      usage: { prompt_tokens: tokens, total_tokens: tokens },
      data: vectors.map((vector, index) => ({
        embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector,
        index,
        object: "embedding",
      })),
    });
  }

  /** `/v1/completions`: the scripted tokens after the raw prompt, whole or streamed, usage when asked for. */
  async function completion(request: Record<string, unknown>, reply: Reply): Promise<void> {
    const model = typeof request.model === "string" ? request.model : (models[0] ?? "model");
    if (typeof request.prompt !== "string") {
      return reply.json(400, errorBody(400, "invalid_request_error", "'prompt' must be a string"));
    }
    if (!options.anyModel && !models.includes(model)) {
      return reply.json(404, errorBody(404, "not_found_error", `model '${model}' not found`));
    }
    const limit = typeof request.max_tokens === "number" ? request.max_tokens : Number.POSITIVE_INFINITY;
    const produced = tokens.slice(0, Math.min(tokens.length, limit));
    const finish = produced.length < tokens.length ? "length" : "stop";
    const usage = {
      prompt_tokens: Math.max(1, Math.ceil(request.prompt.length / 4)),
      completion_tokens: produced.length,
      total_tokens: Math.max(1, Math.ceil(request.prompt.length / 4)) + produced.length,
    };
    const id = `cmpl-${randomBytes(8).toString("hex")}`;
    const base = { id, object: "text_completion", created: Math.floor(Date.now() / 1000), model };
    if (request.stream !== true) {
      return reply.json(200, {
        ...base,
        choices: [{ index: 0, text: produced.join(""), logprobs: null, finish_reason: finish }],
        usage,
      });
    }
    const stream = reply.sse();
    for (const token of produced) {
      await sleep(options.tokenMs ?? 0);
      if (
        !stream.write({ ...base, choices: [{ index: 0, text: token, logprobs: null, finish_reason: null }] })
      )
        return;
    }
    if (!stream.write({ ...base, choices: [{ index: 0, text: "", logprobs: null, finish_reason: finish }] }))
      return;
    const streamOptions = (request.stream_options ?? {}) as Record<string, unknown>;
    if (streamOptions.include_usage === true && !stream.write({ ...base, choices: [], usage })) return;
    stream.done();
  }

  async function chatCompletion(request: Record<string, unknown>, reply: Reply): Promise<void> {
    const model = typeof request.model === "string" ? request.model : (models[0] ?? "model");
    if (!Array.isArray(request.messages)) {
      return reply.json(400, errorBody(400, "invalid_request_error", "'messages' is required"));
    }
    if (!options.anyModel && !models.includes(model)) {
      return reply.json(404, errorBody(404, "not_found_error", `model '${model}' not found`));
    }
    const messages = (request.messages as unknown[]).map((message) => {
      const m = (message ?? {}) as Record<string, unknown>;
      return { role: String(m.role ?? ""), content: contentText(m.content) };
    });
    const promptTokens = countPromptTokens(messages);
    if (options.contextSize !== undefined && promptTokens > options.contextSize) {
      return reply.json(
        400,
        errorBody(
          400,
          "exceed_context_size_error",
          `request (${promptTokens} tokens) exceeds the available context size (${options.contextSize} tokens), try increasing it`,
          { n_prompt_tokens: promptTokens, n_ctx: options.contextSize },
        ),
      );
    }
    if (options.maxConcurrent !== undefined && generating >= options.maxConcurrent) {
      return reply.json(429, errorBody(429, "rate_limit_error", "Too many requests: all slots are busy"), {
        "retry-after": "1",
      });
    }
    const limitValue = request.max_completion_tokens ?? request.max_tokens ?? request.n_predict;
    const limit = typeof limitValue === "number" && limitValue >= 0 ? limitValue : Number.POSITIVE_INFINITY;
    const stops = (
      typeof request.stop === "string" ? [request.stop] : Array.isArray(request.stop) ? request.stop : []
    ).filter((stop): stop is string => typeof stop === "string" && stop !== "");
    const streaming = request.stream === true;
    const streamOptions = (request.stream_options ?? {}) as Record<string, unknown>;
    const includeUsage = streamOptions.include_usage === true;
    const id = `chatcmpl-${randomBytes(16).toString("base64url")}`;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      choices,
      created: Math.floor(Date.now() / 1000),
      id,
      model,
      system_fingerprint: fingerprint,
      object: "chat.completion.chunk",
      ...extra,
    });

    const tools = Array.isArray(request.tools) ? (request.tools as { function?: { name?: unknown } }[]) : [];
    const lastRole = messages.at(-1)?.role;
    if (tools.length > 0 && request.tool_choice !== "none" && lastRole !== "tool") {
      const named = (request.tool_choice as { function?: { name?: unknown } } | undefined)?.function?.name;
      const name = String(named ?? tools[0]?.function?.name ?? "tool");
      const args = options.toolArguments ?? '{"city":"Paris"}';
      const callId = `call_${randomBytes(6).toString("hex")}`;
      // One token per four characters of arguments, streamed one fragment per token.
      const pieces = args.match(/[\s\S]{1,4}/g) ?? [];
      const usage = {
        completion_tokens: pieces.length,
        prompt_tokens: promptTokens,
        total_tokens: pieces.length + promptTokens,
      };
      if (!streaming) {
        return reply.json(200, {
          choices: [
            {
              finish_reason: "tool_calls",
              index: 0,
              message: {
                role: "assistant",
                content: null,
                tool_calls: [{ id: callId, type: "function", function: { name, arguments: args } }],
              },
            },
          ],
          created: Math.floor(Date.now() / 1000),
          model,
          object: "chat.completion",
          usage,
          id,
        });
      }
      const stream = reply.sse();
      const deltas = [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ index: 0, id: callId, type: "function", function: { name, arguments: "" } }],
        },
        ...pieces.map((piece) => ({ tool_calls: [{ index: 0, function: { arguments: piece } }] })),
      ];
      for (const delta of deltas)
        if (!stream.write(chunk([{ finish_reason: null, index: 0, delta }]))) return;
      if (!stream.write(chunk([{ finish_reason: "tool_calls", index: 0, delta: {} }]))) return;
      if (includeUsage && !stream.write(chunk([], { usage }))) return;
      stream.done();
      return;
    }

    generating++;
    try {
      const stream = streaming ? reply.sse() : undefined;
      if (
        stream &&
        !stream.write(chunk([{ finish_reason: null, index: 0, delta: { role: "assistant", content: null } }]))
      ) {
        return;
      }
      const promptMs = options.promptMs ?? 0;
      const tokenMs = options.tokenMs ?? 0;
      await sleep(promptMs);
      let output = "";
      let predicted = 0;
      let finishReason = "stop";
      // A response_format is honoured as llama.cpp's grammar does: JSON that fits the schema, a token per 4 characters.
      const format = request.response_format as
        | { type?: unknown; json_schema?: { schema?: unknown } }
        | undefined;
      const script =
        format?.type === "json_schema"
          ? (JSON.stringify(exampleOf(format.json_schema?.schema ?? {}, "answer")).match(/[\s\S]{1,4}/g) ??
            [])
          : format?.type === "json_object"
            ? ['{"an', 'swer"', ':"He', 'llo"}']
            : tokens;
      for (const token of script) {
        if (predicted >= limit) {
          finishReason = "length";
          break;
        }
        await sleep(tokenMs);
        if (reply.gone()) return;
        if (predicted === options.failAfterTokens) return reply.drop();
        predicted++;
        const combined = output + token;
        const stopAt = Math.min(...stops.map((stop) => combined.indexOf(stop)).filter((index) => index >= 0));
        const visible = Number.isFinite(stopAt)
          ? combined.slice(output.length, Math.max(output.length, stopAt))
          : token;
        output += visible;
        if (
          stream &&
          visible !== "" &&
          !stream.write(chunk([{ finish_reason: null, index: 0, delta: { content: visible } }]))
        ) {
          return;
        }
        if (Number.isFinite(stopAt)) break;
      }
      if (reply.gone()) return;

      const usage = {
        completion_tokens: predicted,
        prompt_tokens: promptTokens,
        total_tokens: predicted + promptTokens,
        prompt_tokens_details: { cached_tokens: 0 },
      };
      const predictedMs = tokenMs * predicted;
      const timings = {
        cache_n: 0,
        prompt_n: promptTokens,
        prompt_ms: promptMs,
        prompt_per_token_ms: promptTokens > 0 ? promptMs / promptTokens : 0,
        prompt_per_second: perSecond(promptTokens, promptMs),
        predicted_n: predicted,
        predicted_ms: predictedMs,
        predicted_per_token_ms: predicted > 0 ? predictedMs / predicted : 0,
        predicted_per_second: perSecond(predicted, predictedMs),
      };
      if (!stream) {
        return reply.json(200, {
          choices: [
            { finish_reason: finishReason, index: 0, message: { role: "assistant", content: output } },
          ],
          created: Math.floor(Date.now() / 1000),
          model,
          system_fingerprint: fingerprint,
          object: "chat.completion",
          ...(withUsage ? { usage } : {}),
          id,
          ...(withTimings ? { timings } : {}),
        });
      }
      const last = [chunk([{ finish_reason: finishReason, index: 0, delta: {} }])];
      if (includeUsage && withUsage) last.push(chunk([], { usage }));
      // llama.cpp puts the timings on the last chunk it sends.
      const lastChunk = last.at(-1);
      if (withTimings && lastChunk) Object.assign(lastChunk, { timings });
      for (const value of last) if (!stream.write(value)) return;
      stream.done();
    } finally {
      generating--;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/v1`,
    origin,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Reply {
  json(status: number, value: unknown, headers?: Record<string, string>): void;
  /** Starts an SSE stream; `write` answers false once the client is gone. */
  sse(): { write(value: unknown): boolean; done(): void };
  /** Whether the client hung up before the answer was complete. */
  gone(): boolean;
  /** Drops the connection mid-answer, as a crashed server does. */
  drop(): void;
}

/** Writes answers the way llama.cpp's server does, logging each JSON object sent. */
function replyTo(res: ServerResponse, entry: FakeOpenAIRequest): Reply {
  let hungUp = false;
  res.on("close", () => {
    if (!res.writableFinished) hungUp = true;
  });
  const gone = () => hungUp || res.destroyed;
  return {
    json(status, value, headers = {}) {
      entry.status = status;
      entry.sent.push(value);
      res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
      res.end(JSON.stringify(value));
    },
    sse() {
      entry.status = 200;
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
      });
      return {
        write(value) {
          if (gone()) return false;
          entry.sent.push(value);
          res.write(`data: ${JSON.stringify(value)}\n\n`);
          return true;
        },
        done() {
          if (gone()) return;
          res.end("data: [DONE]\n\n");
        },
      };
    },
    gone,
    drop: () => res.destroy(),
  };
}
