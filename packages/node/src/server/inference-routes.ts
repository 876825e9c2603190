/**
 * The node's OpenAI routes beside chat: `POST /v1/embeddings`, `/v1/completions` and
 * `/v1/responses`, on the same raw listener, with chat's rules (node-server.ts): the same API key or
 * link token, capacity slot, abort on disconnect, headers only after the backend's first event,
 * `x-request-id` on every answer, and for pooled requests a signed UsageReceipt (a header on whole
 * answers, a comment before `[DONE]` on streams). A backend that speaks the OpenAI API gets the
 * body as it is and its answer goes back as it is (`relayOpenAI`); the others are served from the
 * Backend interface: embed, completeStream, and chatStream under the Responses API's shape.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  chatRequestProblem,
  HttpError,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  type SignedObject,
  SSE_DONE_EVENT,
  sendJson,
  toHttpError,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Backend, ChatRelay, ChatStreamEvent, FinishReason } from "../backends/types.js";
import { type Need, parseRelayedRequest } from "./chat-request.js";
import { parseCompletionRequest } from "./completions-api.js";
import { embeddingsBody, parseEmbeddingsRequest } from "./embeddings-api.js";
import type { NodeMetrics } from "./node-metrics.js";
import { parseResponsesRequest, ResponseBuilder } from "./responses-api.js";

export type Final = Extract<ChatStreamEvent, { type: "done" }>;

/** A request's hold on the node: a capacity slot, its abort signal and its first-token clock. */
export interface Slot {
  readonly signal: AbortSignal;
  /** Marks the first token (time to first token), once. */
  token(): void;
  /** Signs the receipt of a pooled request (null otherwise, or when signing failed). */
  receipt(model: string, stream: boolean, final: Final): Promise<SignedObject<"UsageReceipt"> | null>;
  /** Frees the slot; counts the tokens and logs the request when it finished. */
  close(model: string, stream: boolean, final: Final | undefined): void;
}

export interface InferenceContext {
  backend: Backend;
  logger: Logger;
  metrics: NodeMetrics;
  /** Takes a capacity slot for the request (429 when none is free); aborts it if the client leaves. */
  open(res: ServerResponse, started: number, route: string, requestId: string | undefined): Slot;
  /** Throws the 400 for the first need the model cannot meet on this node. */
  refuseUnsupported(model: string, needs: ReadonlyArray<{ need: Need; param: string }>): Promise<void>;
}

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  started: number,
  requestId: string | undefined,
) => Promise<void>;

const finishJson = (reason: FinishReason) => (reason === "abort" ? "stop" : reason);

const sseHeaders = (id: string) => ({
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-request-id": id,
});

const receiptHeader = (receipt: SignedObject<"UsageReceipt"> | null): Record<string, string> =>
  receipt ? { [RECEIPT_HEADER]: Buffer.from(JSON.stringify(receipt)).toString("base64url") } : {};

const invalid = (refusal: { param: string; message: string }) =>
  new HttpError("invalid_value", refusal.message, refusal.param || null);

/** A stream that failed after it started: one error event, and the error marked as answered. */
function endWithError(res: ServerResponse, error: unknown, responses: ResponseBuilder | null): never {
  const http = toHttpError(error, "node", "node server");
  if (responses !== null) {
    responses.fail(http.code, http.message);
    res.end();
  } else {
    res.end(
      `data: ${JSON.stringify({ error: { message: http.message, type: http.type, code: http.code } })}\n\n`,
    );
  }
  throw Object.assign(http, { alreadySent: true });
}

const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0;

/** The node's estimate of a text's tokens, when the server counts none: a quarter of its characters. */
const estimateTokens = (characters: number) => Math.ceil(characters / 4);

/**
 * The usage and finish reason of a relayed answer: the server's own count; when it sent none,
 * the node's estimate (`usageEstimated`, said in the receipt): the prompt from the request's
 * characters, the completion from `estimate()` (content events streamed, or the answer's text).
 */
export function relayedFinal(
  withUsage: Record<string, unknown>,
  finish: unknown,
  estimate?: { request: Record<string, unknown>; completionTokens: () => number },
): Final {
  const usage = (withUsage.usage ?? {}) as { prompt_tokens?: unknown; completion_tokens?: unknown };
  const finishReason = finish === "length" ? "length" : finish === "tool_calls" ? "tool_calls" : "stop";
  if (estimate !== undefined && !(isCount(usage.prompt_tokens) && isCount(usage.completion_tokens))) {
    const { messages, prompt, input } = estimate.request;
    return {
      type: "done",
      finishReason,
      usage: {
        promptTokens: estimateTokens(JSON.stringify(messages ?? prompt ?? input ?? "").length),
        completionTokens: estimate.completionTokens(),
      },
      usageEstimated: true,
    };
  }
  return {
    type: "done",
    finishReason,
    usage: {
      promptTokens: isCount(usage.prompt_tokens) ? usage.prompt_tokens : 0,
      completionTokens: isCount(usage.completion_tokens) ? usage.completion_tokens : 0,
    },
  };
}

/** The generated text of a whole relayed answer (content, text, tool-call arguments), for an estimate. */
function answerCharacters(answer: Record<string, unknown>): number {
  let characters = 0;
  for (const choice of Array.isArray(answer.choices) ? (answer.choices as Record<string, unknown>[]) : []) {
    if (typeof choice.text === "string") characters += choice.text.length;
    const message = choice.message as
      | { content?: unknown; tool_calls?: Array<{ function?: { arguments?: unknown } }> }
      | undefined;
    if (typeof message?.content === "string") characters += message.content.length;
    for (const call of message?.tool_calls ?? []) {
      if (typeof call.function?.arguments === "string") characters += call.function.arguments.length;
    }
  }
  return characters;
}

type RelayRoute = "chat" | "completions";

/** Whether a relayed event carries generated text or tool-call arguments (the first token's clock). */
const CONTENT = /"(content|text|reasoning_content|arguments)":"[^"]/;

const RELAYS: Record<
  RelayRoute,
  {
    required: "messages" | "prompt";
    whole: (relay: ChatRelay) => ChatRelay["chat"];
    stream: (relay: ChatRelay) => ChatRelay["chatStream"];
    /** Whether a streamed choice carries content (the first token's clock). */
    content: (choice: Record<string, unknown>) => boolean;
  }
> = {
  chat: {
    required: "messages",
    whole: (relay) => relay.chat,
    stream: (relay) => relay.chatStream,
    content: (choice) => {
      const delta = choice.delta as Record<string, unknown> | undefined;
      return delta !== undefined && Boolean(delta.content || delta.tool_calls || delta.reasoning_content);
    },
  },
  completions: {
    required: "prompt",
    whole: (relay) => relay.completions,
    stream: (relay) => relay.completionsStream,
    content: (choice) => typeof choice.text === "string" && choice.text !== "",
  },
};

/**
 * A backend that speaks the OpenAI API gets the consumer's request as it is (only `stream` and
 * the usage chunk are the node's), and its answer goes back as it is: tools, structured outputs,
 * logprobs, images and every field gbt has no name for work as far as the backend supports
 * them. The node reads the usage for its receipt and keeps the stream's end (receipt, [DONE]).
 */
export async function relayOpenAI(
  ctx: InferenceContext,
  relay: ChatRelay,
  route: RelayRoute,
  res: ServerResponse,
  body: unknown,
  started: number,
  requestId: string | undefined,
): Promise<void> {
  const rules = RELAYS[route];
  const parsed = parseRelayedRequest(body, rules.required);
  if (!parsed.ok) throw invalid(parsed);
  // What is wrong whatever the server (a tool schema that is not one, a tool result answering no call).
  const wrong = route === "chat" ? chatRequestProblem(parsed.value.request, { allowN: true }) : null;
  if (wrong) throw invalid(wrong);
  const { request, stream, includeUsage, model } = parsed.value;
  const slot = ctx.open(res, started, route, requestId);
  let final: Final | undefined;
  try {
    if (!stream) {
      const answer = await rules.whole(relay).call(relay, request, slot.signal);
      slot.token();
      const choice = (Array.isArray(answer.choices) ? answer.choices[0] : undefined) as
        | { finish_reason?: unknown }
        | undefined;
      final = relayedFinal(answer, choice?.finish_reason, {
        request,
        completionTokens: () => estimateTokens(answerCharacters(answer)),
      });
      const receipt = await slot.receipt(model, false, final);
      sendJson(res, 200, answer, { "x-request-id": String(answer.id ?? ""), ...receiptHeader(receipt) });
      return;
    }
    const chunks = rules.stream(relay).call(relay, request, slot.signal)[Symbol.asyncIterator]();
    // The first chunk before the headers, so that the backend's refusal gets its own status.
    let step = await chunks.next();
    const firstId = step.done ? undefined : step.value.json().id;
    res.writeHead(200, sseHeaders(String(firstId ?? `relay-${randomBytes(12).toString("base64url")}`)));
    let usage: Record<string, unknown> | undefined;
    let finish: string | undefined;
    /** Events that carried generated text: the completion estimate when the server counts none. */
    let contentEvents = 0;
    // Events that arrive together leave together: one write per batch, not one per event.
    let corked = false;
    const uncork = () => {
      corked = false;
      res.uncork();
    };
    try {
      while (!step.done) {
        const { data } = step.value;
        // The event is forwarded as the server wrote it; it is parsed only when it may carry
        // what the node reads (usage, a finish reason), and scanned for content otherwise.
        let forward = true;
        if (data.includes('"usage":{') || data.includes('"finish_reason":"')) {
          const chunk = step.value.json();
          const choices = Array.isArray(chunk.choices) ? (chunk.choices as Record<string, unknown>[]) : [];
          if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk;
          for (const choice of choices) {
            if (typeof choice.finish_reason === "string") finish = choice.finish_reason;
            if (rules.content(choice)) {
              slot.token();
              contentEvents++;
            }
          }
          // The usage chunk goes to the consumer only when asked for (the node always asks for it).
          forward = choices.length > 0 || includeUsage;
        } else if (CONTENT.test(data)) {
          slot.token();
          contentEvents++;
        }
        if (forward) {
          if (!corked) {
            corked = true;
            res.cork();
            process.nextTick(uncork);
          }
          res.write(`data: ${data}\n\n`);
        }
        step = await chunks.next();
      }
    } catch (error) {
      endWithError(res, error, null);
    }
    if (slot.signal.aborted) {
      res.end();
      return;
    }
    final = relayedFinal(usage ?? {}, finish ?? "stop", { request, completionTokens: () => contentEvents });
    const receipt = await slot.receipt(model, true, final);
    if (receipt) res.write(`${RECEIPT_SSE_PREFIX}${JSON.stringify(receipt)}\n\n`);
    res.end(SSE_DONE_EVENT);
  } finally {
    slot.close(model, stream, final);
  }
}

/** The three routes, bound to the node's context. */
export function inferenceRoutes(ctx: InferenceContext): {
  embeddings: RouteHandler;
  completions: RouteHandler;
  responses: RouteHandler;
} {
  const { backend } = ctx;

  async function embeddings(
    _req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    started: number,
    requestId: string | undefined,
  ): Promise<void> {
    const id = `embd-${randomBytes(12).toString("base64url")}`;
    if (backend.relay !== undefined) {
      const parsed = parseRelayedRequest(body, "input");
      if (!parsed.ok) throw invalid(parsed);
      const { request, model } = parsed.value;
      const slot = ctx.open(res, started, "embeddings", requestId);
      let final: Final | undefined;
      try {
        const answer = await backend.relay.embeddings(request, slot.signal);
        slot.token();
        final = relayedFinal({ usage: { ...(answer.usage as object), completion_tokens: 0 } }, "stop", {
          request,
          completionTokens: () => 0,
        });
        const receipt = await slot.receipt(model, false, final);
        sendJson(res, 200, answer, { "x-request-id": id, ...receiptHeader(receipt) });
      } finally {
        slot.close(model, false, final);
      }
      return;
    }
    const parsed = parseEmbeddingsRequest(body);
    if (!parsed.ok) throw invalid(parsed);
    const { request, encoding } = parsed.value;
    if (backend.embed === undefined) {
      throw new HttpError(
        "unsupported_parameter",
        `This node's ${backend.kind} backend does not serve embeddings.`,
        "model",
      );
    }
    await ctx.refuseUnsupported(request.model, [{ need: "embeddings", param: "model" }]);
    const slot = ctx.open(res, started, "embeddings", requestId);
    let final: Final | undefined;
    try {
      const result = await backend.embed({ ...request, signal: slot.signal });
      slot.token();
      if (slot.signal.aborted) return;
      final = {
        type: "done",
        finishReason: "stop",
        usage: { promptTokens: result.promptTokens, completionTokens: 0 },
      };
      const receipt = await slot.receipt(request.model, false, final);
      sendJson(res, 200, embeddingsBody(request.model, result, encoding), {
        "x-request-id": id,
        ...receiptHeader(receipt),
      });
    } finally {
      slot.close(request.model, false, final);
    }
  }

  async function completions(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    started: number,
    requestId: string | undefined,
  ): Promise<void> {
    if (backend.relay !== undefined) {
      await relayOpenAI(ctx, backend.relay, "completions", res, body, started, requestId);
      return;
    }
    void req;
    const parsed = parseCompletionRequest(body);
    if (!parsed.ok) throw invalid(parsed);
    const { request, stream, includeUsage, echo } = parsed.value;
    if (backend.completeStream === undefined) {
      throw new HttpError(
        "unsupported_parameter",
        `This node's ${backend.kind} backend does not serve raw text completions; use /v1/chat/completions.`,
        "prompt",
      );
    }
    await ctx.refuseUnsupported(request.model, [{ need: "completions", param: "prompt" }]);
    const slot = ctx.open(res, started, "completions", requestId);
    const id = `cmpl-${randomBytes(12).toString("base64url")}`;
    const created = Math.floor(Date.now() / 1000);
    const events = backend.completeStream({ ...request, signal: slot.signal })[Symbol.asyncIterator]();
    let final: Final | undefined;
    try {
      const first = await events.next();
      const usageJson = (f: Final) => ({
        prompt_tokens: f.usage.promptTokens,
        completion_tokens: f.usage.completionTokens,
        total_tokens: f.usage.promptTokens + f.usage.completionTokens,
      });
      if (stream) {
        res.writeHead(200, sseHeaders(id));
        const head = `data: {"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(request.model)},"choices":[{"index":0,"text":`;
        const chunk = (text: string, finish: string | null) =>
          `${head}${JSON.stringify(text)},"logprobs":null,"finish_reason":${finish === null ? "null" : `"${finish}"`}}]}\n\n`;
        // Chat's layout: a framing first chunk (the echoed prompt, or nothing), the text, the finish.
        res.write(chunk(echo ? request.prompt : "", null));
        let step = first;
        try {
          while (!step.done) {
            const event = step.value;
            if (event.type === "delta") {
              slot.token();
              res.write(chunk(event.text, null));
            } else if (event.type === "done") {
              final = event;
              break;
            }
            step = await events.next();
          }
        } catch (error) {
          endWithError(res, error, null);
        }
        if (final === undefined || final.finishReason === "abort") {
          res.end();
          return;
        }
        res.write(chunk("", finishJson(final.finishReason)));
        if (includeUsage) {
          res.write(
            `data: ${JSON.stringify({ id, object: "text_completion", created, model: request.model, choices: [], usage: usageJson(final) })}\n\n`,
          );
        }
        const receipt = await slot.receipt(request.model, true, final);
        if (receipt) res.write(`${RECEIPT_SSE_PREFIX}${JSON.stringify(receipt)}\n\n`);
        res.end(SSE_DONE_EVENT);
        return;
      }
      let text = echo ? request.prompt : "";
      let step = first;
      while (!step.done) {
        const event = step.value;
        if (event.type === "delta") {
          slot.token();
          text += event.text;
        } else if (event.type === "done") {
          final = event;
          break;
        }
        step = await events.next();
      }
      if (final === undefined) throw new Error("backend stream ended without a final event");
      if (final.finishReason === "abort") return;
      const receipt = await slot.receipt(request.model, false, final);
      sendJson(
        res,
        200,
        {
          id,
          object: "text_completion",
          created,
          model: request.model,
          choices: [{ index: 0, text, logprobs: null, finish_reason: finishJson(final.finishReason) }],
          usage: usageJson(final),
        },
        { "x-request-id": id, ...receiptHeader(receipt) },
      );
    } finally {
      await events.return?.().catch(() => undefined);
      slot.close(request.model, stream, final);
    }
  }

  async function responses(
    _req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    started: number,
    requestId: string | undefined,
  ): Promise<void> {
    const parsed = parseResponsesRequest(body);
    if (!parsed.ok) throw invalid(parsed);
    const { chat, settings } = parsed.value;
    const { request, stream } = chat;
    // A relaying backend decides for itself what it supports (its server answers the refusal).
    if (backend.relay === undefined) await ctx.refuseUnsupported(request.model, chat.needs);
    const slot = ctx.open(res, started, "responses", requestId);
    const events = backend.chatStream({ ...request, signal: slot.signal })[Symbol.asyncIterator]();
    let final: Final | undefined;
    try {
      const first = await events.next();
      const builder = new ResponseBuilder(
        request.model,
        settings,
        stream ? (event) => res.write(event) : null,
      );
      if (stream) {
        res.writeHead(200, sseHeaders(builder.id));
        builder.start();
      }
      let step = first;
      try {
        while (!step.done) {
          const event = step.value;
          if (event.type === "done") {
            final = event;
            break;
          }
          if (builder.event(event)) slot.token();
          step = await events.next();
        }
      } catch (error) {
        if (!stream) throw error;
        endWithError(res, error, builder);
      }
      if (final === undefined || final.finishReason === "abort") {
        if (stream) res.end();
        if (final === undefined && !stream) throw new Error("backend stream ended without a final event");
        return;
      }
      builder.finish(final.finishReason, final.usage);
      const receipt = await slot.receipt(request.model, stream, final);
      if (stream) {
        // Pooled streams end as chat's do, for the gateway (which forwards neither line).
        if (requestId !== undefined) {
          if (receipt) res.write(`${RECEIPT_SSE_PREFIX}${JSON.stringify(receipt)}\n\n`);
          res.end(SSE_DONE_EVENT);
        } else res.end();
        return;
      }
      sendJson(res, 200, builder.response(), { "x-request-id": builder.id, ...receiptHeader(receipt) });
    } finally {
      await events.return?.().catch(() => undefined);
      slot.close(request.model, stream, final);
    }
  }

  return { embeddings, completions, responses };
}
