/**
 * The consumer routes the pool serves, as one small table: for each, the node path it is forwarded
 * to, what admission reads of its body (stream, include_usage, the completion-token bound of the
 * credit hold) and refuses before routing, and how its stream is relayed and billed (which events
 * carry delivered text, whether the node's `data: [DONE]` reaches the consumer, the shape of a
 * mid-stream error event). The hot path reads these fields; it never branches on a route's name.
 *
 * The layouts are the node's (protocol api/node/sse-layout.ts and the node's routes): chat and
 * completions share chat's SSE framing (`"content"` / `"text"` deltas); the Responses API streams
 * `event: <type>` events, of which only `response.output_text.delta` and
 * `response.function_call_arguments.delta` carry text, and a pooled one ends with the receipt and a
 * `data: [DONE]` that OpenAI's clients do not expect, so the gateway cuts it.
 */
import { chatRequestProblem, HttpError, nodePaths, responsesRequestProblem } from "@gbt/protocol";
import type { ConsumerRoute } from "../pool/capabilities.js";
import { CHAT_SSE_RULES, type SseRules } from "./sse-relay.js";

/** The most inputs one embeddings request may carry (OpenAI's own limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/** What admission reads of a body beyond its model. */
export interface RouteFields {
  stream: boolean;
  includeUsage: boolean;
  /** The completion-token bound of the credit hold (0: the route bills input tokens only). */
  maxTokens: number;
}

export interface ProxyRoute {
  readonly name: ConsumerRoute;
  /** Where the node serves it. */
  readonly nodePath: string;
  /** The route's own checks of a body (an object with a valid model); throws a 400 naming the field. */
  readonly fields: (body: Record<string, unknown>, defaultMaxTokens: number) => RouteFields;
  /** Which stream events bill as delivered text. */
  readonly sse: SseRules;
  /** Whether the node's `data: [DONE]` is forwarded (held back until the request is journalled). */
  readonly forwardsDone: boolean;
  /** The last event of a stream the node broke off. */
  readonly failureEvent: (message: string) => string;
  /** The parameter a body over the size limit is named by (null: the generic 413). */
  readonly oversizedParam: string | null;
}

const invalid = (message: string, param: string | null) => new HttpError("invalid_value", message, param);

function streamFlag(body: Record<string, unknown>): boolean {
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== "boolean") {
    throw invalid("`stream` must be a boolean.", "stream");
  }
  return stream === true;
}

function tokenBound(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  if (!(Number.isInteger(value) && (value as number) >= 1)) {
    throw invalid(`\`${name}\` must be a positive integer.`, name);
  }
  return value as number;
}

function includeUsage(body: Record<string, unknown>, stream: boolean): boolean {
  const options = body.stream_options as { include_usage?: unknown } | undefined | null;
  return stream && options?.include_usage === true;
}

/** A chat stream's failure: one `data:` error event (OpenAI's shape), no [DONE]. */
function chatFailureEvent(message: string): string {
  return `data: ${JSON.stringify({
    error: { message, type: "server_error", param: null, code: "upstream_failed" },
  })}\n\n`;
}

/** The Responses API's failure event: `event: error` with the error's code and message. */
function responsesFailureEvent(message: string): string {
  return `event: error\ndata: ${JSON.stringify({
    type: "error",
    code: "upstream_failed",
    message,
    param: null,
  })}\n\n`;
}

const chat: ProxyRoute = {
  name: "chat",
  nodePath: nodePaths.chatCompletions,
  fields(body, defaultMaxTokens) {
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      throw invalid("`messages` must be a non-empty array.", "messages");
    }
    // Wrong on every node: refused before routing, so no node works on it and nothing is billed.
    const wrong = chatRequestProblem(body);
    if (wrong) throw invalid(wrong.message, wrong.param);
    const stream = streamFlag(body);
    const limit = body.max_completion_tokens ?? body.max_tokens;
    return {
      stream,
      includeUsage: includeUsage(body, stream),
      maxTokens: tokenBound(
        limit,
        body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens",
        defaultMaxTokens,
      ),
    };
  },
  sse: CHAT_SSE_RULES,
  forwardsDone: true,
  failureEvent: chatFailureEvent,
  oversizedParam: null,
};

const completions: ProxyRoute = {
  name: "completions",
  nodePath: nodePaths.completions,
  fields(body, defaultMaxTokens) {
    const prompt = body.prompt;
    const valid =
      typeof prompt === "string" ||
      (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string");
    if (!valid) throw invalid("`prompt` must be a string (or an array of one string).", "prompt");
    const stream = streamFlag(body);
    return {
      stream,
      includeUsage: includeUsage(body, stream),
      maxTokens: tokenBound(body.max_tokens, "max_tokens", defaultMaxTokens),
    };
  },
  sse: { textKeys: [Buffer.from('"text":"')], eventPrefixes: null },
  forwardsDone: true,
  failureEvent: chatFailureEvent,
  oversizedParam: null,
};

const embeddings: ProxyRoute = {
  name: "embeddings",
  nodePath: nodePaths.embeddings,
  fields(body) {
    const input = body.input;
    if (typeof input !== "string") {
      if (!Array.isArray(input) || input.length === 0) {
        throw invalid("`input` must be a string or a non-empty array of strings.", "input");
      }
      if (input.length > MAX_EMBEDDING_INPUTS) {
        throw invalid(
          `\`input\` holds ${input.length} inputs; at most ${MAX_EMBEDDING_INPUTS} per request.`,
          "input",
        );
      }
      for (const item of input) {
        if (typeof item !== "string") {
          throw invalid("`input` must be text: token arrays are not accepted here.", "input");
        }
      }
    }
    if (body.stream !== undefined && body.stream !== null && body.stream !== false) {
      throw invalid("Embeddings are never streamed.", "stream");
    }
    return { stream: false, includeUsage: false, maxTokens: 0 };
  },
  sse: CHAT_SSE_RULES,
  forwardsDone: true,
  failureEvent: chatFailureEvent,
  oversizedParam: "input",
};

const responses: ProxyRoute = {
  name: "responses",
  nodePath: nodePaths.responses,
  fields(body, defaultMaxTokens) {
    const input = body.input;
    if (typeof input !== "string" && !(Array.isArray(input) && input.length > 0)) {
      throw invalid("`input` must be a string or a non-empty array of input items.", "input");
    }
    const wrong = responsesRequestProblem(body);
    if (wrong) throw invalid(wrong.message, wrong.param);
    if (body.previous_response_id !== undefined && body.previous_response_id !== null) {
      throw invalid(
        "`previous_response_id` is not supported: this gateway stores no responses; send the whole conversation as `input`.",
        "previous_response_id",
      );
    }
    if (body.store === true) {
      throw invalid("`store: true` is not supported: this gateway stores no responses.", "store");
    }
    return {
      stream: streamFlag(body),
      includeUsage: false,
      maxTokens: tokenBound(body.max_output_tokens, "max_output_tokens", defaultMaxTokens),
    };
  },
  sse: {
    textKeys: [Buffer.from('"delta":"')],
    eventPrefixes: [
      Buffer.from("event: response.output_text.delta\n"),
      Buffer.from("event: response.function_call_arguments.delta\n"),
    ],
  },
  forwardsDone: false,
  failureEvent: responsesFailureEvent,
  oversizedParam: null,
};

/** Every pooled route, by the gateway path it is served on. */
export const proxyRoutes = { chat, completions, embeddings, responses } as const;
