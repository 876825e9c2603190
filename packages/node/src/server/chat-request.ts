/**
 * The OpenAI `POST /v1/chat/completions` request as gbt accepts it: every field a client may
 * send is type- and range-checked, and a failure names the field (`param`) the way OpenAI does.
 * Tools (with `tool_choice`, assistant `tool_calls` and `tool` messages answering them), a
 * structured `response_format`, image parts and logprobs are parsed into the backend request;
 * what the model cannot do on this node (its `ModelCapabilities`) is a 400 naming the field,
 * never silently dropped (`unsupportedFor`). Fields gbt has no use for are ignored, as
 * OpenAI-compatible servers do. A backend that speaks the OpenAI API itself gets the request as it
 * is instead (`parseRelayedRequest`).
 */

import { jsonSchemaProblem } from "@gbt/protocol";
import { z } from "zod";
import type {
  BackendKind,
  ChatMessage,
  ChatRequest,
  ImagePart,
  ModelCapabilities,
  ResponseFormat,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from "../backends/types.js";

/** OpenAI's rule for function and schema names. */
const functionName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "a name of 1–64 letters, digits, underscores or dashes is required");

const textPart = z.object({ type: z.literal("text"), text: z.string().max(1_000_000) });
const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({
    url: z
      .string()
      .max(20_000_000)
      .refine((url) => /^(https?:\/\/|data:image\/[a-z0-9.+-]+;base64,)/i.test(url), {
        message: "an https:// URL or a data:image/…;base64, URL is required",
      }),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
});

const userContent = z.union([
  z.string().max(1_000_000),
  z.array(z.discriminatedUnion("type", [textPart, imagePart])).max(256),
]);
const textContent = z.union([z.string().max(1_000_000), z.array(textPart).max(256)]);

const toolCallSchema = z.object({
  id: z.string().min(1).max(256),
  type: z.literal("function"),
  function: z.object({ name: functionName, arguments: z.string().max(1_000_000) }),
});

const message = z.discriminatedUnion("role", [
  z.object({
    role: z.enum(["system", "developer"]),
    content: textContent,
    name: z.string().max(64).optional(),
  }),
  z.object({ role: z.literal("user"), content: userContent, name: z.string().max(64).optional() }),
  z.object({
    role: z.literal("assistant"),
    content: textContent.nullable().optional(),
    name: z.string().max(64).optional(),
    refusal: z.string().max(1_000_000).nullable().optional(),
    tool_calls: z.array(toolCallSchema).max(128).optional(),
  }),
  z.object({
    role: z.literal("tool"),
    content: textContent,
    tool_call_id: z.string().min(1).max(256),
  }),
]);

const toolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: functionName,
    description: z.string().max(100_000).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(["auto", "none", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: functionName }) }),
]);

const responseFormatSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    json_schema: z.object({
      name: functionName,
      description: z.string().max(100_000).optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const penalty = z.number().min(-2).max(2).nullable().optional();

/** The fields chat and legacy completions share: the model, streaming and sampling. */
export const generationFields = {
  model: z.string().min(1).max(256),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
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
  presence_penalty: penalty,
  frequency_penalty: penalty,
  user: z.string().max(256).optional(),
};

export const chatCompletionRequestSchema = z.object({
  ...generationFields,
  messages: z.array(message).min(1).max(4096),
  max_completion_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  n: z.literal(1, { message: "only n=1 is supported" }).nullable().optional(),
  tools: z.array(toolSchema).max(128).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  response_format: responseFormatSchema.nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

/** What a request needs of the model (the `ModelCapabilities` keys it depends on). */
export type Need = Exclude<keyof ModelCapabilities, "contextLength" | "embeddingDimensions">;

export interface ParsedChatRequest {
  request: Omit<ChatRequest, "signal">;
  stream: boolean;
  includeUsage: boolean;
  /** The capabilities this request depends on, each with the field that needs it. */
  needs: Array<{ need: Need; param: string }>;
}

export type Refusal = { ok: false; param: string; message: string };

/** The first zod issue as OpenAI's `param` and message. */
export function zodRefusal(error: z.ZodError): Refusal {
  const issue = error.issues[0];
  const param =
    issue?.path
      .map((p) => (typeof p === "number" ? `[${p}]` : String(p)))
      .join(".")
      .replace(/\.\[/g, "[") ?? "";
  return {
    ok: false,
    param,
    message: `Invalid value for '${param || "body"}': ${issue?.message ?? "malformed"}.`,
  };
}

const refusal = (param: string, message: string): Refusal => ({ ok: false, param, message });

/** What each capability means, for refusals. */
const NEED_WORDS: Record<Need, string> = {
  chat: "chat completions",
  tools: "tool calling",
  jsonSchema: "structured output (response_format)",
  embeddings: "embeddings",
  vision: "image inputs",
  logprobs: "token log-probabilities",
  completions: "raw text completions",
};

/**
 * The first need the model cannot meet, as a 400 naming the field; null when it can meet all.
 * Absent capabilities mean chat only (a backend that does not say more).
 */
export function unsupportedFor(
  needs: ReadonlyArray<{ need: Need; param: string }>,
  capabilities: ModelCapabilities | undefined,
  model: string,
  kind: BackendKind,
): Refusal | null {
  for (const { need, param } of needs) {
    const can = capabilities === undefined ? need === "chat" : capabilities[need];
    if (!can) {
      return refusal(
        param,
        `'${param}' needs ${NEED_WORDS[need]}, which model '${model}' does not support on this node's ${kind} backend; send the request without it, or use a model or node that supports it.`,
      );
    }
  }
  return null;
}

/** A request passed through to a backend that speaks the OpenAI API: only what the node itself needs is checked. */
export function parseRelayedRequest(
  body: unknown,
  required: "messages" | "prompt" | "input" = "messages",
):
  | {
      ok: true;
      value: { request: Record<string, unknown>; stream: boolean; includeUsage: boolean; model: string };
    }
  | Refusal {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return refusal("", "The request body must be a JSON object.");
  }
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model.length === 0 || b.model.length > 256) {
    return refusal("model", "Invalid value for 'model': a non-empty string is required.");
  }
  const field = b[required];
  if (required === "messages" ? !Array.isArray(field) || field.length === 0 : field === undefined) {
    return refusal(
      required,
      `Invalid value for '${required}': ${required === "messages" ? "a non-empty array" : "a value"} is required.`,
    );
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== "boolean") {
    return refusal("stream", "Invalid value for 'stream': a boolean is required.");
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

const joinText = (content: string | Array<{ text: string }> | null | undefined) =>
  typeof content === "string" ? content : (content ?? []).map((part) => part.text).join("");

/** Checks a JSON Schema the consumer sent; a refusal names where it is not a schema. */
export function schemaRefusal(schema: unknown, param: string): Refusal | null {
  const problem = jsonSchemaProblem(schema);
  return problem === null
    ? null
    : refusal(param, `Invalid value for '${param}': not a usable JSON Schema (${problem}).`);
}

/** Tools as the backend takes them; a refusal for a malformed parameters schema. */
export function toolDefinitions(
  tools: ReadonlyArray<{
    name: string;
    description?: string | undefined;
    parameters?: Record<string, unknown> | undefined;
    strict?: boolean | null | undefined;
  }>,
  paramOf: (index: number) => string,
): { ok: true; value: ToolDefinition[] } | Refusal {
  const seen = new Set<string>();
  const value: ToolDefinition[] = [];
  for (const [index, tool] of tools.entries()) {
    if (seen.has(tool.name)) {
      return refusal(
        paramOf(index),
        `Invalid value for '${paramOf(index)}': the name '${tool.name}' is used twice.`,
      );
    }
    seen.add(tool.name);
    if (tool.parameters !== undefined) {
      const bad = schemaRefusal(tool.parameters, `${paramOf(index)}.parameters`);
      if (bad) return bad;
    }
    value.push({
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      ...(tool.parameters !== undefined ? { parameters: tool.parameters } : {}),
      ...(tool.strict != null ? { strict: tool.strict } : {}),
    });
  }
  return { ok: true, value };
}

/** Validates a parsed JSON body; returns the backend request or the first bad field. */
export function parseChatCompletionRequest(body: unknown): { ok: true; value: ParsedChatRequest } | Refusal {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const n = (body as { n?: unknown }).n;
    if (typeof n === "number" && n > 1) {
      return refusal(
        "n",
        "Invalid value for 'n': gbt answers one choice per request (n = 1); send n requests instead.",
      );
    }
  }
  const parsed = chatCompletionRequestSchema.safeParse(body);
  if (!parsed.success) return zodRefusal(parsed.error);
  const r = parsed.data;
  const needs: ParsedChatRequest["needs"] = [{ need: "chat", param: "model" }];

  const tools = toolDefinitions(
    (r.tools ?? []).map((tool) => tool.function),
    (i) => `tools[${i}].function`,
  );
  if (!tools.ok) return tools;
  let toolChoice: ToolChoice | undefined;
  if (r.tool_choice != null) {
    toolChoice = typeof r.tool_choice === "string" ? r.tool_choice : { name: r.tool_choice.function.name };
    if (toolChoice !== "none" && toolChoice !== "auto" && tools.value.length === 0) {
      return refusal("tool_choice", "Invalid value for 'tool_choice': it needs 'tools' to choose from.");
    }
    if (
      typeof toolChoice === "object" &&
      !tools.value.some((t) => t.name === (toolChoice as { name: string }).name)
    ) {
      return refusal(
        "tool_choice",
        `Invalid value for 'tool_choice': no tool named '${toolChoice.name}' is in 'tools'.`,
      );
    }
  }
  if (tools.value.length > 0 && toolChoice !== "none") needs.push({ need: "tools", param: "tools" });

  // Messages: tool results must answer a call made earlier in the conversation.
  const calls = new Map<string, string>();
  const messages: ChatMessage[] = [];
  for (const [index, m] of r.messages.entries()) {
    switch (m.role) {
      case "system":
      case "developer":
        messages.push({ role: "system", content: joinText(m.content) });
        break;
      case "user": {
        if (typeof m.content === "string") {
          messages.push({ role: "user", content: m.content });
          break;
        }
        const images: ImagePart[] = [];
        let text = "";
        for (const part of m.content) {
          if (part.type === "text") text += part.text;
          else
            images.push({
              url: part.image_url.url,
              ...(part.image_url.detail ? { detail: part.image_url.detail } : {}),
            });
        }
        if (images.length > 0) needs.push({ need: "vision", param: `messages[${index}].content` });
        messages.push({ role: "user", content: text, ...(images.length > 0 ? { images } : {}) });
        break;
      }
      case "assistant": {
        const toolCalls: ToolCall[] = (m.tool_calls ?? []).map((call) => ({
          id: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        }));
        for (const call of toolCalls) calls.set(call.id, call.name);
        if (toolCalls.length > 0) needs.push({ need: "tools", param: `messages[${index}].tool_calls` });
        messages.push({
          role: "assistant",
          content: joinText(m.content),
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
        });
        break;
      }
      case "tool": {
        const name = calls.get(m.tool_call_id);
        if (name === undefined) {
          return refusal(
            `messages[${index}].tool_call_id`,
            `Invalid value for 'messages[${index}].tool_call_id': no earlier assistant message has a tool call with id '${m.tool_call_id}'.`,
          );
        }
        messages.push({ role: "tool", content: joinText(m.content), toolCallId: m.tool_call_id, name });
        break;
      }
    }
  }

  let responseFormat: ResponseFormat | undefined;
  const format = r.response_format;
  if (format?.type === "json_object") responseFormat = { type: "json_object" };
  else if (format?.type === "json_schema") {
    const { name, description, schema, strict } = format.json_schema;
    const bad = schemaRefusal(schema ?? {}, "response_format.json_schema.schema");
    if (bad) return bad;
    responseFormat = {
      type: "json_schema",
      name,
      schema: schema ?? {},
      ...(strict != null ? { strict } : {}),
      ...(description !== undefined ? { description } : {}),
    };
  }
  if (responseFormat !== undefined) needs.push({ need: "jsonSchema", param: "response_format" });
  if (r.logprobs === true) needs.push({ need: "logprobs", param: "logprobs" });
  else if (r.top_logprobs != null && r.top_logprobs > 0) {
    return refusal("top_logprobs", "Invalid value for 'top_logprobs': it needs 'logprobs: true'.");
  }

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
        ...(r.presence_penalty != null ? { presencePenalty: r.presence_penalty } : {}),
        ...(r.frequency_penalty != null ? { frequencyPenalty: r.frequency_penalty } : {}),
        ...(tools.value.length > 0 ? { tools: tools.value } : {}),
        ...(toolChoice !== undefined ? { toolChoice } : {}),
        ...(r.parallel_tool_calls != null ? { parallelToolCalls: r.parallel_tool_calls } : {}),
        ...(responseFormat !== undefined ? { responseFormat } : {}),
        ...(r.logprobs === true ? { logprobs: true, topLogprobs: r.top_logprobs ?? 0 } : {}),
      },
      stream: r.stream === true,
      includeUsage: r.stream_options?.include_usage === true,
      needs,
    },
  };
}
