/**
 * The OpenAI `POST /v1/chat/completions` request as gbt accepts it: every field a client may
 * send is type- and range-checked, and a failure names the field (`param`) the way OpenAI does.
 * Unknown fields are ignored, as OpenAI-compatible servers do, so newer clients keep working.
 */
import { z } from "zod";
import type { ChatMessage, ChatRequest } from "../backends/types.js";

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

/** Validates a parsed JSON body; returns the backend request or the first bad field. */
export function parseChatCompletionRequest(
  body: unknown,
): { ok: true; value: ParsedChatRequest } | { ok: false; param: string; message: string } {
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
