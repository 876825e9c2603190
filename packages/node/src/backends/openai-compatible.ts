/**
 * The backend for any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, LM Studio),
 * through the official `openai` client. Usage is the server's own count, from the usage chunk
 * that `stream_options.include_usage` asks for; llama.cpp server's `timings` object, when a
 * chunk carries one, gives the server's own prefill and decode durations. The client is built
 * so that nothing from the user's OpenAI environment (OPENAI_API_KEY, organization, project)
 * reaches a local server, and it never retries: a 429 must reach the router as BUSY at once.
 */
import { GbtError } from "@gbt/protocol";
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { z } from "zod";
import { createAbortScopes } from "./abort-scopes.js";
import { createRawRelay } from "./openai-relay.js";
import { systemErrorCode } from "./system-error-code.js";
import type {
  Backend,
  BackendHealth,
  BackendTimings,
  ChatMessage,
  ChatRequest,
  ChatResult,
  ChatStreamEvent,
  FinishReason,
  ModelInfo,
  ResponseFormat,
  Usage,
} from "./types.js";
import { openAISampling } from "./types.js";

export interface OpenAICompatibleBackendOptions {
  /** The server's base URL, usually ending in /v1 (e.g. http://127.0.0.1:8080/v1). */
  baseURL: string;
  /** Bearer key the server expects, if any. The user's OPENAI_API_KEY is never used. */
  apiKey?: string;
  /**
   * Bound in ms on waiting for the server's answer to start (the headers: for a stream, until
   * generation begins); the client's default is 10 minutes.
   */
  timeoutMs?: number;
}

/** Sent when no key is configured: the client insists on one, and servers without auth ignore it. */
const PLACEHOLDER_KEY = "gbt-no-key";

/** llama.cpp server's `timings` object (other fields ignored). */
const timingsSchema = z.object({
  prompt_n: z.number().nonnegative().optional(),
  prompt_ms: z.number().nonnegative().optional(),
  predicted_n: z.number().nonnegative().optional(),
  predicted_ms: z.number().nonnegative().optional(),
});

const usageSchema = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
});

/** A model entry: OpenAI's fields, vLLM's max_model_len, llama.cpp's meta. */
const modelSchema = z.object({
  id: z.string().min(1),
  owned_by: z.string().optional(),
  max_model_len: z.number().int().positive().optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
});

/**
 * Creates a backend that serves chats with the models of an OpenAI-compatible server.
 *
 * Aborting a request's signal closes its connection (the server stops generating) and ends the
 * stream with a `done` event whose finishReason is "abort"; its usage is the server's latest
 * count when it sent one (llama.cpp's per-token timings), otherwise the chunks received and 0
 * prompt tokens. A server that sends no usage chunk is counted the same way.
 */
export function createOpenAICompatibleBackend(options: OpenAICompatibleBackendOptions): Backend {
  const baseURL = options.baseURL.replace(/\/+$/, "");
  const client = new OpenAI({
    baseURL,
    apiKey: options.apiKey ?? PLACEHOLDER_KEY,
    organization: null,
    project: null,
    maxRetries: 0,
    ...(options.timeoutMs !== undefined ? { timeout: Math.max(1, Math.round(options.timeoutMs)) } : {}),
    // The client's logger writes to the console; stdout carries `--json` results.
    logLevel: "off",
  });
  /** Requests in flight, aborted by close(). */
  const scopes = createAbortScopes();
  const scope = (signal?: AbortSignal) => scopes.open(signal);

  const fail = (error: unknown, model?: string) => toGbtError(error, baseURL, model, options.timeoutMs);

  async function* chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    const { signal, release } = scope(request.signal);
    let chunks = 0;
    let usage: Usage | undefined;
    let timings: BackendTimings | undefined;
    let finish: string | undefined;
    let stream: { controller: AbortController } | undefined;
    let finished = false;
    try {
      if (!signal.aborted) {
        const answer = await client.chat.completions.create(
          { ...requestBody(request), stream: true, stream_options: { include_usage: true } },
          { signal },
        );
        stream = answer;
        // The client ends this loop quietly, without an error, when the signal aborts it.
        for await (const chunk of answer) {
          timings = readTimings(chunk) ?? timings;
          usage = readUsage(chunk.usage) ?? usage;
          const choice = chunk.choices[0];
          const text = choice?.delta?.content;
          if (typeof text === "string" && text !== "") {
            chunks++;
            yield { type: "delta", text };
          }
          for (const call of choice?.delta?.tool_calls ?? []) {
            chunks++;
            yield {
              type: "tool_call",
              index: call.index,
              ...(call.id ? { id: call.id } : {}),
              ...(call.function?.name ? { name: call.function.name } : {}),
              arguments: call.function?.arguments ?? "",
            };
          }
          if (choice?.finish_reason) finish = choice.finish_reason;
        }
        if (!signal.aborted) {
          if (finish === undefined) {
            throw new GbtError(
              "BACKEND_UNREACHABLE",
              `The server at ${baseURL} ended the stream before finishing the answer.`,
              {
                details: { baseURL, model: request.model },
                hint: "Check the server's log: it may have crashed or been restarted.",
              },
            );
          }
          finished = true;
          yield {
            type: "done",
            finishReason: finishReason(finish),
            ...usageOrEstimate(usage ?? usageFromTimings(timings), chunks),
            ...(timings ? { timings } : {}),
          };
          return;
        }
      }
    } catch (error) {
      if (!signal.aborted) throw fail(error, request.model);
    } finally {
      // Also reached when the consumer stops iterating: hang up so the server stops generating.
      if (!finished) stream?.controller.abort();
      release();
    }
    yield {
      type: "done",
      finishReason: "abort",
      usage: usageFromTimings(timings) ?? { promptTokens: 0, completionTokens: chunks },
    };
  }

  async function chat(request: ChatRequest): Promise<ChatResult> {
    const { signal, release } = scope(request.signal);
    try {
      if (signal.aborted) throw new APIUserAbortError();
      const answer = await client.chat.completions.create(
        { ...requestBody(request), stream: false },
        { signal },
      );
      const choice = answer.choices[0];
      const timings = readTimings(answer);
      const usage = readUsage(answer.usage) ?? usageFromTimings(timings);
      if (choice === undefined || usage === undefined) {
        throw new GbtError(
          "BACKEND_UNREACHABLE",
          `The server at ${baseURL} answered a completion without ${choice ? "usage" : "choices"}.`,
          {
            details: { baseURL, model: request.model },
            hint: "Check that the URL points at an OpenAI-compatible server.",
          },
        );
      }
      const toolCalls = (choice.message.tool_calls ?? []).flatMap((call) =>
        call.type === "function"
          ? [{ id: call.id, name: call.function.name, arguments: call.function.arguments }]
          : [],
      );
      return {
        text: choice.message.content ?? "",
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
        finishReason: finishReason(choice.finish_reason),
        usage,
        ...(timings ? { timings } : {}),
      };
    } catch (error) {
      if (!signal.aborted) throw fail(error, request.model);
      return { text: "", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } };
    } finally {
      release();
    }
  }

  async function listModels(signal?: AbortSignal): Promise<ModelInfo[]> {
    const models: ModelInfo[] = [];
    try {
      for await (const raw of client.models.list(signal ? { signal } : undefined)) {
        const parsed = modelSchema.safeParse(raw);
        if (!parsed.success) continue;
        const { id, owned_by, max_model_len, meta } = parsed.data;
        const size = meta?.size;
        const contextLength =
          max_model_len ?? (typeof meta?.n_ctx_train === "number" ? meta.n_ctx_train : undefined);
        models.push({
          id,
          ...(typeof size === "number" ? { sizeBytes: size } : {}),
          ...(contextLength !== undefined ? { contextLength } : {}),
          // The server's own answer decides what it supports (the node passes requests through):
          // advertised as capable, so that the gateway routes such requests here.
          capabilities: {
            chat: true,
            tools: true,
            jsonSchema: true,
            embeddings: true,
            vision: true,
            logprobs: true,
            completions: true,
            ...(contextLength !== undefined ? { contextLength } : {}),
          },
          details: { ...(owned_by !== undefined ? { ownedBy: owned_by } : {}), ...meta },
        });
      }
    } catch (error) {
      throw fail(error);
    }
    return models;
  }

  return {
    kind: "openai",
    location: baseURL,

    async health(signal?: AbortSignal): Promise<BackendHealth> {
      const started = performance.now();
      const latencyMs = () => Math.round(performance.now() - started);
      try {
        // llama.cpp and vLLM serve /health at the root, beside /v1.
        await client.get(`${serverRoot(baseURL)}/health`, signal ? { signal } : {});
        return { ok: true, latencyMs: latencyMs() };
      } catch (error) {
        if (error instanceof APIError && error.status === 503) {
          return {
            ok: false,
            detail: `${baseURL} is not ready (${serverMessage(error)}).`,
            latencyMs: latencyMs(),
          };
        }
        if (!(error instanceof APIError && error.status !== undefined && error.status < 500)) {
          return { ok: false, detail: fail(error).message };
        }
      }
      // No /health here (or it refused us): the model list tells whether the server answers.
      try {
        await listModels(signal);
        return { ok: true, latencyMs: latencyMs() };
      } catch (error) {
        return { ok: false, detail: error instanceof Error ? error.message : String(error) };
      }
    },

    listModels,
    chatStream,
    chat,

    relay: createRawRelay({
      baseURL,
      apiKey: options.apiKey ?? PLACEHOLDER_KEY,
      ...(options.timeoutMs !== undefined ? { timeoutMs: Math.max(1, Math.round(options.timeoutMs)) } : {}),
      fail,
      scope,
    }),

    async close() {
      scopes.abortAll(new Error("backend closed"));
    },
  };
}

function requestBody(request: ChatRequest) {
  return {
    model: request.model,
    messages: request.messages.map(openAIMessage),
    ...openAISampling(request),
    ...(request.tools !== undefined && request.tools.length > 0
      ? {
          tools: request.tools.map((tool) => ({
            type: "function" as const,
            function: {
              name: tool.name,
              ...(tool.description !== undefined ? { description: tool.description } : {}),
              ...(tool.parameters !== undefined ? { parameters: tool.parameters } : {}),
              ...(tool.strict !== undefined ? { strict: tool.strict } : {}),
            },
          })),
        }
      : {}),
    ...(request.toolChoice !== undefined
      ? {
          tool_choice:
            typeof request.toolChoice === "string"
              ? request.toolChoice
              : { type: "function" as const, function: { name: request.toolChoice.name } },
        }
      : {}),
    ...(request.parallelToolCalls !== undefined ? { parallel_tool_calls: request.parallelToolCalls } : {}),
    ...(request.responseFormat !== undefined
      ? { response_format: responseFormatBody(request.responseFormat) }
      : {}),
    ...(request.logprobs ? { logprobs: true, top_logprobs: request.topLogprobs ?? 0 } : {}),
  };
}

function responseFormatBody(format: ResponseFormat) {
  if (format.type !== "json_schema") return { type: format.type };
  return {
    type: "json_schema" as const,
    json_schema: {
      name: format.name,
      schema: format.schema,
      ...(format.strict !== undefined ? { strict: format.strict } : {}),
      ...(format.description !== undefined ? { description: format.description } : {}),
    },
  };
}

/** One message as the OpenAI API carries it (tool calls, tool results and images included). */
function openAIMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case "tool":
      return { role: "tool", tool_call_id: message.toolCallId ?? "", content: message.content };
    case "assistant":
      return message.toolCalls !== undefined && message.toolCalls.length > 0
        ? {
            role: "assistant",
            content: message.content === "" ? null : message.content,
            tool_calls: message.toolCalls.map((call) => ({
              id: call.id,
              type: "function",
              function: { name: call.name, arguments: call.arguments },
            })),
          }
        : { role: "assistant", content: message.content };
    case "user":
      return message.images !== undefined && message.images.length > 0
        ? {
            role: "user",
            content: [
              ...(message.content !== "" ? [{ type: "text" as const, text: message.content }] : []),
              ...message.images.map((image) => ({
                type: "image_url" as const,
                image_url: { url: image.url, ...(image.detail ? { detail: image.detail } : {}) },
              })),
            ],
          }
        : { role: "user", content: message.content };
    default:
      return { role: "system", content: message.content };
  }
}

function finishReason(reason: string | null | undefined): FinishReason {
  return reason === "length" ? "length" : reason === "tool_calls" ? "tool_calls" : "stop";
}

function readUsage(raw: unknown): Usage | undefined {
  const parsed = usageSchema.safeParse(raw);
  return parsed.success
    ? { promptTokens: parsed.data.prompt_tokens, completionTokens: parsed.data.completion_tokens }
    : undefined;
}

/** llama.cpp server's `timings` on a chunk or a completion, when present. */
function readTimings(answer: object): BackendTimings | undefined {
  if (!("timings" in answer)) return undefined;
  const parsed = timingsSchema.safeParse(answer.timings);
  if (!parsed.success) return undefined;
  const { prompt_ms, predicted_ms, prompt_n, predicted_n } = parsed.data;
  return {
    ...(prompt_ms !== undefined ? { promptMs: prompt_ms } : {}),
    ...(predicted_ms !== undefined ? { decodeMs: predicted_ms } : {}),
    ...(prompt_n !== undefined ? { promptTokens: prompt_n } : {}),
    ...(predicted_n !== undefined ? { decodeTokens: predicted_n } : {}),
    source: "llama.cpp:timings",
  };
}

/** The server's count, or the node's estimate (one token per content chunk, said as such). */
function usageOrEstimate(usage: Usage | undefined, chunks: number): { usage: Usage; usageEstimated?: true } {
  return usage !== undefined
    ? { usage }
    : { usage: { promptTokens: 0, completionTokens: chunks }, usageEstimated: true };
}

function usageFromTimings(timings: BackendTimings | undefined): Usage | undefined {
  if (timings?.promptTokens === undefined || timings.decodeTokens === undefined) return undefined;
  return { promptTokens: timings.promptTokens, completionTokens: timings.decodeTokens };
}

/** The server root: the base URL without its trailing /v1. */
function serverRoot(baseURL: string): string {
  return baseURL.replace(/\/v1$/, "");
}

/** The server's own message, without the status the client puts in front of it. */
function serverMessage(error: APIError): string {
  const body = error.error as { message?: unknown } | undefined;
  return typeof body?.message === "string" ? body.message : error.message;
}

const CONTEXT_MESSAGE = /context (length|size|window)|maximum context|too many tokens|prompt is too long/i;

/** Maps what the client threw to a GbtError a user can act on. */
function toGbtError(
  error: unknown,
  baseURL: string,
  model: string | undefined,
  timeoutMs: number | undefined,
): GbtError {
  if (error instanceof GbtError) return error;
  const serverHint =
    "Start the server (vLLM, llama.cpp server, LM Studio…), or point the backend URL at where it runs.";
  if (error instanceof APIConnectionTimeoutError) {
    return new GbtError(
      "BACKEND_UNREACHABLE",
      `The server at ${baseURL} did not answer within ${timeoutMs ?? "the client's"} ms.`,
      {
        details: { baseURL, ...(timeoutMs !== undefined ? { timeoutMs } : {}) },
        hint: "Check that the server is not stuck, or allow more time.",
        cause: error,
      },
    );
  }
  if (error instanceof APIConnectionError) {
    const code = systemErrorCode(error);
    return new GbtError(
      "BACKEND_UNREACHABLE",
      `Cannot reach the server at ${baseURL}${code ? ` (${code})` : ""}.`,
      {
        details: { baseURL, ...(code ? { code } : {}) },
        hint: serverHint,
        cause: error,
      },
    );
  }
  if (error instanceof TypeError && error.message === "terminated") {
    return new GbtError(
      "BACKEND_UNREACHABLE",
      `The server at ${baseURL} closed the connection in the middle of an answer.`,
      {
        details: { baseURL },
        hint: "Check the server's log: it may have crashed or been restarted.",
        cause: error,
      },
    );
  }
  if (!(error instanceof APIError)) {
    const message = error instanceof Error ? error.message : String(error);
    return new GbtError("BACKEND_UNREACHABLE", `The server at ${baseURL} failed: ${message}`, {
      details: { baseURL },
      cause: error,
    });
  }
  const message = serverMessage(error);
  const status = error.status;
  const details = {
    baseURL,
    ...(status !== undefined ? { status } : {}),
    ...(model !== undefined ? { model } : {}),
  };
  const isContext =
    error.code === "context_length_exceeded" ||
    error.type === "exceed_context_size_error" ||
    CONTEXT_MESSAGE.test(message);
  if (status === 401 || status === 403) {
    return new GbtError("UNAUTHORIZED", `The server at ${baseURL} refused the API key: ${message}`, {
      details,
      hint: "Set the key the server expects in the backend config.",
      cause: error,
    });
  }
  if (status === 404) {
    const aboutModel =
      model !== undefined &&
      (error.code === "model_not_found" || error.param === "model" || /model/i.test(message));
    if (aboutModel) {
      return new GbtError(
        "MODEL_NOT_FOUND",
        `The server at ${baseURL} does not serve the model '${model}': ${message}`,
        {
          details,
          hint: "List the models it serves with `gbt node status`, or load the model in the server.",
          cause: error,
        },
      );
    }
    return new GbtError("NOT_FOUND", `The server at ${baseURL} has no such endpoint: ${message}`, {
      details,
      hint: "Check the backend URL: OpenAI-compatible servers usually answer under /v1.",
      cause: error,
    });
  }
  if (isContext && (status === 400 || status === 413 || status === undefined)) {
    return new GbtError(
      "CONTEXT_LENGTH_EXCEEDED",
      `The prompt does not fit the model's context: ${message}`,
      {
        details,
        hint: "Shorten the conversation, or serve the model with a larger context.",
        cause: error,
      },
    );
  }
  if (status === 429 || status === 503) {
    return new GbtError("BUSY", `The server at ${baseURL} is busy: ${message}`, {
      details,
      hint: "Retry shortly; the server has no free slot.",
      cause: error,
    });
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return new GbtError("INVALID_INPUT", `The server at ${baseURL} refused the request: ${message}`, {
      details,
      cause: error,
    });
  }
  return new GbtError(
    "BACKEND_UNREACHABLE",
    status === undefined
      ? `The server at ${baseURL} failed: ${message}`
      : `The server at ${baseURL} answered HTTP ${status}: ${message}`,
    { details, hint: "Check the server's log.", cause: error },
  );
}
