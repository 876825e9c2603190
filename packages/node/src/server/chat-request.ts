/**
 * The OpenAI `POST /v1/chat/completions` request as gbt accepts it: every field a client may
 * send is type- and range-checked, and a failure names the field (`param`) the way OpenAI does.
 * A field the backend cannot honour and whose absence would change the answer (tools, a
 * structured response_format, logprobs, n > 1) is a 400 naming it, never silently dropped; other
 * unknown fields are ignored, as OpenAI-compatible servers do. A backend that speaks the OpenAI
 * API itself gets the request as it is instead (`parseRelayedRequest`).
 */
import { z } from "zod";
import type { BackendKind, ChatMessage, ChatRequest } from "../backends/types.js";

const content = z.union([
  z.string().max(1_000_000),
  z
    .array(
      z.object({
        type: z.literal("text"),
        text: z.string().max(1_000_000),
      }),
    )
    .max(256),
]);

const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: content.nullable().optional(),
  name: z.string().max(64).optional(),
});

export const chatCompletionRequestSchema = z.object({
  model: z.string().min(1).max(256),
  messages: z.array(message).min(1).max(4096),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  n: z.literal(1, { message: "only n=1 is supported" }).nullable().optional(),
  seed: z
    .number()
    .int()
    .min(-(2 ** 53))
    .max(2 ** 53)
    .nullable()
    .optional(),
  stop: z
    .union([z.string().max(256), z.array(z.string().max(256)).max(4)])
    .nullable()
    .optional(),
  user: z.string().max(256).optional(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export interface ParsedChatRequest {
  request: Omit<ChatRequest, "signal">;
  stream: boolean;
  includeUsage: boolean;
}

type Refusal = { ok: false; param: string; message: string };

/** The fields whose absence would change the answer, and what the backend would have to do. */
function unsupportedField(body: Record<string, unknown>, kind: BackendKind): Refusal | null {
  const refuse = (param: string, what: string): Refusal => ({
    ok: false,
    param,
    message: `'${param}' is not supported by this node's ${kind} backend (${what}); send the request without it, or use a node whose backend supports it.`,
  });
  if (Array.isArray(body.tools) && body.tools.length > 0 && body.tool_choice !== "none") {
    return refuse("tools", "no tool calling here yet");
  }
  const format = (body.response_format as { type?: unknown } | null | undefined)?.type;
  if (format !== undefined && format !== "text")
    return refuse("response_format", "no structured output here yet");
  if (body.logprobs === true) return refuse("logprobs", "no token log-probabilities here");
  if (typeof body.n === "number" && body.n > 1) return refuse("n", "one choice per request");
  return null;
}

/** A request passed through to a backend that speaks the OpenAI API: only what the node itself needs is checked. */
export function parseRelayedRequest(body: unknown):
  | {
      ok: true;
      value: { request: Record<string, unknown>; stream: boolean; includeUsage: boolean; model: string };
    }
  | Refusal {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, param: "", message: "The request body must be a JSON object." };
  }
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0 || b.model.length > 256) {
    return {
      ok: false,
      param: "model",
      message: "Invalid value for 'model': a non-empty string is required.",
    };
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return {
      ok: false,
      param: "messages",
      message: "Invalid value for 'messages': a non-empty array is required.",
    };
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") {
    return { ok: false, param: "stream", message: "Invalid value for 'stream': a boolean is required." };
  }
  const { stream, ...request } = b;
  const options = b.stream_options as { include_usage?: unknown } | null | undefined;
  return {
    ok: true,
    value: {
      request,
      stream: stream === true,
      includeUsage: options?.include_usage === true,
      model: b.model,
    },
  };
}

/** Validates a parsed JSON body; returns the backend request or the first bad field. */
export function parseChatCompletionRequest(
  body: unknown,
  kind: BackendKind = "embedded",
): { ok: true; value: ParsedChatRequest } | Refusal {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const refused = unsupportedField(body as Record<string, unknown>, kind);
    if (refused !== null) return refused;
  }
  const parsed = chatCompletionRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param =
      issue?.path
        .map((p) => (typeof p === "number" ? `[${p}]` : p))
        .join(".")
        .replace(/\.\[/g, "[") ?? "";
    return {
      ok: false,
      param,
      message: `Invalid value for '${param || "body"}': ${issue?.message ?? "malformed"}.`,
    };
  }
  const r = parsed.data;
  const messages: ChatMessage[] = r.messages.map((m) => ({
    role: m.role === "developer" ? "system" : m.role,
    content: typeof m.content === "string" ? m.content : (m.content ?? []).map((part) => part.text).join(""),
  }));
  const maxTokens = r.max_completion_tokens ?? r.max_tokens ?? undefined;
  const stop = typeof r.stop === "string" ? [r.stop] : (r.stop ?? undefined);
  return {
    ok: true,
    value: {
      request: {
        model: r.model,
        messages,
        ...(maxTokens != null ? { maxTokens } : {}),
        ...(r.temperature != null ? { temperature: r.temperature } : {}),
        ...(r.top_p != null ? { topP: r.top_p } : {}),
        ...(r.seed != null ? { seed: r.seed } : {}),
        ...(stop && stop.length > 0 ? { stop } : {}),
      },
      stream: r.stream === true,
      includeUsage: r.stream_options?.include_usage === true,
    },
  };
}
