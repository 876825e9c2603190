/**
 * The Ollama backend, through the official `ollama` client. Token counts and durations are
 * Ollama's own: prompt_eval_count / eval_count and the *_duration nanoseconds of its final
 * chunk. Each request gets its own client whose fetch carries that request's abort signal,
 * because the client's `abort()` cancels every stream of the client at once; the same fetch turns
 * HTTP errors into exceptions before the client sees them (its error path prints to stdout).
 *
 * Tools, `format` and images are mapped in ollama-request.ts; Ollama answers a tool call whole
 * (arguments as an object, usually in one chunk), which becomes one `tool_call` event carrying
 * the arguments as JSON text. Raw completions are `/api/generate` with `raw: true`, embeddings
 * `/api/embed`, and each model's capabilities come from `/api/show` (ollama-capabilities.ts).
 */
import { randomBytes } from "node:crypto";
import { GbtError, HttpError } from "@gbt/protocol";
import { type AbortableAsyncIterator, Ollama } from "ollama";
import { z } from "zod";
import { createAbortScopes } from "./abort-scopes.js";
import { createCapabilityCache } from "./ollama-capabilities.js";
import { ollamaChatParts, ollamaOptions } from "./ollama-request.js";
import { systemErrorCode } from "./system-error-code.js";
import type {
  Backend,
  BackendHealth,
  BackendTimings,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
  CompletionRequest,
  EmbedRequest,
  EmbedResult,
  FinishReason,
  ModelInfo,
  PullProgress,
  ToolCall,
} from "./types.js";

export interface OllamaBackendOptions {
  /** Ollama's base URL (default http://127.0.0.1:11434). */
  host?: string;
  /** The fetch to use (default: the global fetch). */
  fetch?: typeof fetch;
  /**
   * keep_alive sent with every chat (seconds, or a duration such as "10m"); absent, Ollama's
   * default applies, except for models pinned by `loadModel`, which stay loaded.
   */
  keepAlive?: string | number;
}

const DEFAULT_HOST = "http://127.0.0.1:11434";

/** A call as Ollama answers it: whole, its arguments an object (`id` since Ollama 0.12). */
const toolCallSchema = z.object({
  id: z.string().optional(),
  function: z.object({ name: z.string().min(1), arguments: z.record(z.string(), z.unknown()).nullish() }),
});
type OllamaAnswerCall = z.infer<typeof toolCallSchema>;

/** A chat chunk's `message`, or a generate chunk's `response`. */
const pieceShape = {
  message: z
    .object({ content: z.string().optional(), tool_calls: z.array(toolCallSchema).nullish() })
    .optional(),
  response: z.string().optional(),
};

/** Ollama's `omitempty` leaves zero counters and durations out: absent means 0. */
const finalChunkSchema = z.object({
  ...pieceShape,
  done: z.literal(true),
  done_reason: z.string().optional(),
  prompt_eval_count: z.number().int().nonnegative().optional(),
  prompt_eval_duration: z.number().nonnegative().optional(),
  eval_count: z.number().int().nonnegative().optional(),
  eval_duration: z.number().nonnegative().optional(),
});
type FinalChunk = z.infer<typeof finalChunkSchema>;

const chunkSchema = z.union([finalChunkSchema, z.object({ ...pieceShape, done: z.literal(false) })]);
type Chunk = z.infer<typeof chunkSchema>;

const embedSchema = z.object({
  embeddings: z.array(z.array(z.number())),
  prompt_eval_count: z.number().int().nonnegative().optional(),
});

const tagsSchema = z.object({
  models: z.array(
    z.object({
      name: z.string().min(1),
      digest: z.string().optional(),
      size: z.number().nonnegative().optional(),
      modified_at: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
});

const versionSchema = z.object({ version: z.string() });

const progressSchema = z.object({
  status: z.string(),
  digest: z.string().optional(),
  total: z.number().nonnegative().optional(),
  completed: z.number().nonnegative().optional(),
});

/** An HTTP error answered by Ollama, with the message of its `{"error": …}` body. */
class OllamaHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates a backend that serves chats with the models of an Ollama server.
 *
 * Aborting a request's signal closes its connection, which makes Ollama stop generating; the
 * stream then ends with a `done` event whose finishReason is "abort" (completionTokens counts
 * the chunks received, one per token as Ollama streams them, and promptTokens is 0: Ollama
 * reports its counts only at the end).
 */
export function createOllamaBackend(options: OllamaBackendOptions = {}): Backend {
  const host = options.host ?? DEFAULT_HOST;
  const baseFetch = options.fetch ?? globalThis.fetch;
  /** Requests in flight, aborted by close(). */
  const scopes = createAbortScopes();
  /** Models loaded by loadModel: every chat keeps them loaded (keep_alive -1) until unloadModel. */
  const pinned = new Set<string>();
  const capabilityCache = createCapabilityCache();

  /** A client for one request: its fetch honours the request's signal and close(). */
  function scope(signal?: AbortSignal) {
    const request = scopes.open(signal);
    const scopedFetch: typeof fetch = async (input, init) => {
      const signals = [request.signal, ...(init?.signal ? [init.signal] : [])];
      const response = await baseFetch(input, { ...init, signal: AbortSignal.any(signals) });
      if (!response.ok) throw new OllamaHttpError(response.status, await errorMessage(response));
      return response;
    };
    return {
      client: new Ollama({ host, fetch: scopedFetch }),
      signal: request.signal,
      release: request.release,
    };
  }

  function keepAliveFor(model: string): { keep_alive?: string | number } {
    if (options.keepAlive !== undefined) return { keep_alive: options.keepAlive };
    return pinned.has(canonicalName(model)) ? { keep_alive: -1 } : {};
  }

  function chatBody(request: ChatRequest) {
    return { model: request.model, ...ollamaChatParts(request), ...keepAliveFor(request.model) };
  }

  /**
   * One NDJSON stream (a chat's or a raw generate's) as events. `start` opens it with the
   * request's client; `singleCall` keeps only the first tool call (parallel_tool_calls false:
   * Ollama cannot be told to make one call only).
   */
  async function* eventsOf(
    model: string,
    requestSignal: AbortSignal | undefined,
    start: (client: Ollama) => Promise<AbortableAsyncIterator<object>>,
    singleCall = false,
  ): AsyncGenerator<ChatStreamEvent> {
    const { client, signal, release } = scope(requestSignal);
    let chunks = 0;
    let calls = 0;
    let stream: AbortableAsyncIterator<object> | undefined;
    let finished = false;
    try {
      if (!signal.aborted) {
        stream = await start(client);
        for await (const raw of stream) {
          const chunk = parseChunk(chunkSchema, raw);
          const text = textOf(chunk);
          if (text !== "") {
            chunks++;
            yield { type: "delta", text };
          }
          for (const call of chunk.message?.tool_calls ?? []) {
            if (singleCall && calls > 0) break;
            chunks++;
            yield { type: "tool_call", index: calls++, ...toolCall(call) };
          }
          if (chunk.done) {
            finished = true;
            yield { type: "done", ...outcome(chunk, calls > 0) };
            return;
          }
        }
      }
    } catch (error) {
      if (!signal.aborted) throw toGbtError(error, host, model);
    } finally {
      // Also reached when the consumer stops iterating: hang up so Ollama stops generating.
      if (!finished) stream?.abort();
      release();
    }
    yield { type: "done", finishReason: "abort", usage: { promptTokens: 0, completionTokens: chunks } };
  }

  function chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    return eventsOf(
      request.model,
      request.signal,
      (client) => client.chat({ ...chatBody(request), stream: true }),
      request.parallelToolCalls === false,
    );
  }

  async function chat(request: ChatRequest): Promise<ChatResult> {
    const { client, signal, release } = scope(request.signal);
    try {
      if (signal.aborted) throw signal.reason;
      const response = parseChunk(
        finalChunkSchema,
        await client.chat({ ...chatBody(request), stream: false }),
      );
      const answered = response.message?.tool_calls ?? [];
      const calls: ToolCall[] = (request.parallelToolCalls === false ? answered.slice(0, 1) : answered).map(
        toolCall,
      );
      return {
        text: textOf(response),
        ...(calls.length > 0 ? { toolCalls: calls } : {}),
        ...outcome(response, calls.length > 0),
      };
    } catch (error) {
      if (!signal.aborted) throw toGbtError(error, host, request.model);
      return { text: "", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } };
    } finally {
      release();
    }
  }

  /**
   * A raw-prompt completion: `/api/generate` with `raw: true`, so no template is applied. (An
   * empty prompt is Ollama's way of asking for a load: it answers done with nothing generated.)
   */
  function completeStream(request: CompletionRequest): AsyncGenerator<ChatStreamEvent> {
    return eventsOf(request.model, request.signal, (client) =>
      client.generate({
        model: request.model,
        prompt: request.prompt,
        raw: true,
        stream: true,
        options: ollamaOptions(request),
        ...keepAliveFor(request.model),
      }),
    );
  }

  async function embed(request: EmbedRequest): Promise<EmbedResult> {
    const answer = await call(request.model, request.signal, (client) =>
      client.embed({
        model: request.model,
        input: request.input,
        // OpenAI refuses an input longer than the context; Ollama's default would embed a prefix.
        truncate: false,
        ...(request.dimensions !== undefined ? { dimensions: request.dimensions } : {}),
        ...keepAliveFor(request.model),
      }),
    );
    const parsed = embedSchema.safeParse(answer);
    if (!parsed.success || parsed.data.embeddings.length !== request.input.length) {
      throw new GbtError(
        "BACKEND_UNREACHABLE",
        `Ollama at ${host} answered /api/embed with an unexpected shape.`,
        {
          details: { host, model: request.model, inputs: request.input.length },
          hint: "Check that the URL points at Ollama, and that Ollama is recent (0.3.4 or later has /api/embed).",
        },
      );
    }
    const { embeddings } = parsed.data;
    // Ollama shortens a vector only when asked for fewer dimensions than the model has.
    const length = embeddings[0]?.length;
    if (request.dimensions !== undefined && length !== undefined && length !== request.dimensions) {
      throw new HttpError(
        "invalid_value",
        `dimensions is ${request.dimensions}, but '${request.model}' embeds in ${length} dimensions; ask for at most ${length}.`,
        "dimensions",
      );
    }
    return { embeddings, promptTokens: parsed.data.prompt_eval_count ?? 0 };
  }

  /** Runs one non-streamed call under its own scope, mapping failures to GbtError. */
  async function call<T>(
    model: string | undefined,
    signal: AbortSignal | undefined,
    run: (client: Ollama) => Promise<T>,
    notFoundHint?: string,
  ) {
    const context = scope(signal);
    try {
      return await run(context.client);
    } catch (error) {
      if (context.signal.aborted) {
        throw new GbtError("INTERRUPTED", "The request to Ollama was cancelled.", { cause: error });
      }
      throw toGbtError(error, host, model, notFoundHint);
    } finally {
      context.release();
    }
  }

  return {
    kind: "ollama",
    location: host,

    async health(signal?: AbortSignal): Promise<BackendHealth> {
      const started = performance.now();
      try {
        const answer = await call(undefined, signal, (client) => client.version());
        const parsed = versionSchema.safeParse(answer);
        if (!parsed.success)
          return { ok: false, detail: `${host} answered, but not like Ollama (no version).` };
        return { ok: true, version: parsed.data.version, latencyMs: Math.round(performance.now() - started) };
      } catch (error) {
        return { ok: false, detail: error instanceof Error ? error.message : String(error) };
      }
    },

    async listModels(signal?: AbortSignal): Promise<ModelInfo[]> {
      const answer = await call(undefined, signal, (client) => client.list());
      const parsed = tagsSchema.safeParse(answer);
      if (!parsed.success) {
        throw new GbtError("BACKEND_UNREACHABLE", `${host}/api/tags did not answer a model list.`, {
          details: { host },
          hint: "Check that the URL points at Ollama.",
        });
      }
      const models = await Promise.all(
        parsed.data.models.map(async (model): Promise<ModelInfo> => {
          const capabilities = await capabilityCache.get(model.name, model.digest, () =>
            call(model.name, signal, (client) => client.show({ model: model.name })),
          );
          return {
            id: model.name,
            ...(model.digest !== undefined ? { digest: model.digest } : {}),
            ...(model.size !== undefined ? { sizeBytes: model.size } : {}),
            ...(capabilities.contextLength !== undefined
              ? { contextLength: capabilities.contextLength }
              : {}),
            details: {
              ...model.details,
              ...(model.modified_at !== undefined ? { modifiedAt: model.modified_at } : {}),
            },
            capabilities,
          };
        }),
      );
      // A show cut short by the signal reads as "chat only": do not hand that out as the answer.
      if (signal?.aborted) throw new GbtError("INTERRUPTED", "Listing Ollama's models was cancelled.");
      return models;
    },

    chatStream,
    chat,
    completeStream,
    embed,

    async pullModel(model: string, onProgress?: (progress: PullProgress) => void, signal?: AbortSignal) {
      const notFoundHint = "Check the name and tag at https://ollama.com/library.";
      await call(
        model,
        signal,
        async (client) => {
          const stream = await client.pull({ model, stream: true });
          for await (const raw of stream) {
            const progress = progressSchema.safeParse(raw);
            if (!progress.success) continue;
            const { status, completed, total } = progress.data;
            onProgress?.({
              status,
              ...(completed !== undefined ? { completedBytes: completed } : {}),
              ...(total !== undefined ? { totalBytes: total } : {}),
            });
          }
        },
        notFoundHint,
      );
    },

    async removeModel(model: string) {
      await call(model, undefined, (client) => client.delete({ model }));
      pinned.delete(canonicalName(model));
    },

    async loadModel(model: string) {
      pinned.add(canonicalName(model));
      try {
        await call(model, undefined, (client) =>
          client.generate({ model, prompt: "", keep_alive: options.keepAlive ?? -1, stream: false }),
        );
      } catch (error) {
        pinned.delete(canonicalName(model));
        throw error;
      }
    },

    async unloadModel(model: string) {
      pinned.delete(canonicalName(model));
      await call(model, undefined, (client) =>
        client.generate({ model, prompt: "", keep_alive: 0, stream: false }),
      );
    },

    async close() {
      scopes.abortAll(new Error("backend closed"));
      // Models pinned by loadModel would otherwise stay in memory after gbt exits.
      const unpin = [...pinned].map((model) =>
        call(model, AbortSignal.timeout(2000), (client) =>
          client.generate({ model, prompt: "", keep_alive: 0, stream: false }),
        ).catch(() => undefined),
      );
      pinned.clear();
      await Promise.all(unpin);
    },
  };
}

/** Ollama's name rule: a name without a tag means the `latest` tag ("llama3.2" is "llama3.2:latest"). */
function canonicalName(model: string): string {
  return model.slice(model.lastIndexOf("/") + 1).includes(":") ? model : `${model}:latest`;
}

/** A chunk's text: a chat's `message.content`, a generate's `response`. */
function textOf(chunk: Chunk): string {
  return chunk.message?.content ?? chunk.response ?? "";
}

/** An answered call in OpenAI's terms: an id (Ollama's own when it gives one) and JSON arguments. */
function toolCall(call: OllamaAnswerCall): ToolCall {
  return {
    id: call.id !== undefined && call.id !== "" ? call.id : `call_${randomBytes(12).toString("base64url")}`,
    name: call.function.name,
    arguments: JSON.stringify(call.function.arguments ?? {}),
  };
}

/** Finish reason, usage and timings from Ollama's final chunk. */
function outcome(
  final: FinalChunk,
  calledTools: boolean,
): {
  finishReason: FinishReason;
  usage: ChatResult["usage"];
  timings: BackendTimings;
} {
  const promptTokens = final.prompt_eval_count ?? 0;
  const completionTokens = final.eval_count ?? 0;
  return {
    // Ollama says "stop" after a call; OpenAI says "tool_calls" (a call it answers is complete).
    finishReason: calledTools ? "tool_calls" : final.done_reason === "length" ? "length" : "stop",
    usage: { promptTokens, completionTokens },
    timings: {
      promptMs: (final.prompt_eval_duration ?? 0) / 1e6,
      decodeMs: (final.eval_duration ?? 0) / 1e6,
      promptTokens,
      decodeTokens: completionTokens,
      source: "ollama:eval_duration",
    },
  };
}

function parseChunk<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new GbtError("BACKEND_UNREACHABLE", "Ollama answered a chat chunk of an unexpected shape.", {
    details: {
      issues: parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    },
    hint: "Check that the URL points at Ollama, and that Ollama is recent.",
  });
}

/** The message of Ollama's `{"error": "…"}` body, or the start of whatever else it answered. */
async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === "string") return body.error;
  } catch {
    // not JSON: fall through to the text itself
  }
  return text.trim().slice(0, 200) || `HTTP ${response.status}`;
}

const NOT_FOUND_MESSAGE = /not found|file does not exist/i;

/** Maps whatever the client or our fetch threw to a GbtError a user can act on. */
function toGbtError(
  error: unknown,
  host: string,
  model: string | undefined,
  notFoundHint?: string,
): GbtError {
  if (error instanceof GbtError) return error;
  if (error instanceof TypeError && error.message === "terminated") {
    return new GbtError(
      "BACKEND_UNREACHABLE",
      `Ollama at ${host} closed the connection in the middle of an answer.`,
      {
        details: { host },
        hint: "Check Ollama's log (`ollama serve` output): the model runner may have crashed.",
        cause: error,
      },
    );
  }
  const code = systemErrorCode(error);
  if (code !== undefined || (error instanceof TypeError && error.message === "fetch failed")) {
    return new GbtError("BACKEND_UNREACHABLE", `Cannot reach Ollama at ${host}${code ? ` (${code})` : ""}.`, {
      details: { host, ...(code ? { code } : {}) },
      hint: "Start Ollama (`ollama serve`, or open the Ollama app), or point the backend URL at where it runs.",
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  const status = error instanceof OllamaHttpError ? error.status : undefined;
  // Ollama's 404 names the model; a bare "404 page not found" means the URL is not Ollama's API.
  const aboutModel =
    status === 404 ? /model/i.test(message) : status === undefined && NOT_FOUND_MESSAGE.test(message);
  if (model !== undefined && aboutModel) {
    return new GbtError("MODEL_NOT_FOUND", `Ollama at ${host} has no model '${model}' (${message}).`, {
      details: { host, model },
      hint: notFoundHint ?? `Pull it first (\`ollama pull ${model}\`), or choose one of \`ollama list\`.`,
      cause: error,
    });
  }
  if (status === 429 || status === 503) {
    return new GbtError("BUSY", `Ollama at ${host} is busy (${message}).`, {
      details: { host, status },
      hint: "Retry shortly, or raise OLLAMA_NUM_PARALLEL / OLLAMA_MAX_QUEUE.",
      cause: error,
    });
  }
  if (status === 400 && /context length/i.test(message)) {
    return new GbtError("CONTEXT_LENGTH_EXCEEDED", `Ollama refused the request: ${message}.`, {
      details: { host, status, ...(model !== undefined ? { model } : {}) },
      hint: "Shorten the input, or split it into several.",
      cause: error,
    });
  }
  if (status === 400) {
    return new GbtError("INVALID_INPUT", `Ollama refused the request: ${message}.`, {
      details: { host, status },
      cause: error,
    });
  }
  return new GbtError(
    "BACKEND_UNREACHABLE",
    status === undefined
      ? `Ollama at ${host} failed: ${message}`
      : `Ollama at ${host} answered HTTP ${status}: ${message}`,
    {
      details: { host, ...(status !== undefined ? { status } : {}) },
      hint: "Check Ollama's log (`ollama serve` output).",
      cause: error,
    },
  );
}
