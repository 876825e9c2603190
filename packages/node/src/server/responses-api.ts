/**
 * OpenAI's Responses API (`POST /v1/responses`) over the node's chat backends: the request (input
 * as text or items, instructions, function tools, text.format) becomes a chat request, and the
 * backend's events become a Response object, whole, or streamed as the `response.*` event sequence
 * OpenAI sends (created, in_progress, output items and their parts with text and argument deltas,
 * completed or incomplete). gbt keeps no conversation state: `previous_response_id`, `store: true`,
 * `background` and `conversation` are 400s naming the field.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type {
  ChatMessage,
  ChatRequest,
  ChatStreamEvent,
  FinishReason,
  ImagePart,
  ResponseFormat,
  ToolCall,
  ToolChoice,
  Usage,
} from "../backends/types.js";
import {
  type ParsedChatRequest,
  type Refusal,
  schemaRefusal,
  toolDefinitions,
  zodRefusal,
} from "./chat-request.js";

const name = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "a name of 1–64 letters, digits, underscores or dashes is required");
const longText = z.string().max(1_000_000);

const contentPart = z.discriminatedUnion("type", [
  z.object({ type: z.literal("input_text"), text: longText }),
  z.object({ type: z.literal("output_text"), text: longText }),
  z.object({ type: z.literal("refusal"), refusal: longText }),
  z.object({
    type: z.literal("input_image"),
    image_url: z
      .string()
      .max(20_000_000)
      .refine((url) => /^(https?:\/\/|data:image\/[a-z0-9.+-]+;base64,)/i.test(url), {
        message: "an https:// URL or a data:image/…;base64, URL is required",
      }),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
]);

const messageItem = z.object({
  type: z.literal("message").optional(),
  role: z.enum(["user", "system", "developer", "assistant"]),
  content: z.union([longText, z.array(contentPart).max(256)]),
});
const functionCallItem = z.object({
  type: z.literal("function_call"),
  call_id: z.string().min(1).max(256),
  name,
  arguments: longText,
});
const functionOutputItem = z.object({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1).max(256),
  output: z.union([longText, z.array(contentPart).max(256)]),
});

const formatSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    name,
    schema: z.record(z.string(), z.unknown()),
    description: z.string().max(100_000).optional(),
    strict: z.boolean().nullable().optional(),
  }),
]);

export const responsesRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([longText, z.array(z.unknown()).min(1).max(4096)]),
  instructions: longText.nullable().optional(),
  stream: z.boolean().nullable().optional(),
  max_output_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  tools: z.array(z.unknown()).max(128).nullable().optional(),
  tool_choice: z
    .union([z.enum(["auto", "none", "required"]), z.object({ type: z.literal("function"), name })])
    .nullable()
    .optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  text: z.object({ format: formatSchema.optional() }).nullable().optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
  user: z.string().max(256).optional(),
});

const functionTool = z.object({
  type: z.literal("function"),
  name,
  description: z.string().max(100_000).nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

/** What the answer echoes of the request (OpenAI's Response carries the request's settings). */
export interface ResponseSettings {
  instructions: string | null;
  maxOutputTokens: number | null;
  temperature: number | null;
  topP: number | null;
  toolChoice: unknown;
  tools: unknown[];
  parallelToolCalls: boolean;
  format: unknown;
  metadata: Record<string, string>;
  user: string | null;
}

export interface ParsedResponsesRequest {
  chat: ParsedChatRequest;
  settings: ResponseSettings;
}

const refuse = (param: string, message: string): Refusal => ({ ok: false, param, message });

const STATELESS = "gbt keeps no conversation state; send the whole conversation as 'input' items instead.";

export function parseResponsesRequest(body: unknown): { ok: true; value: ParsedResponsesRequest } | Refusal {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    if (b.previous_response_id != null) {
      return refuse("previous_response_id", `'previous_response_id' is not supported: ${STATELESS}`);
    }
    if (b.conversation != null)
      return refuse("conversation", `'conversation' is not supported: ${STATELESS}`);
    if (b.store === true)
      return refuse("store", `'store: true' is not supported: ${STATELESS} Send store: false.`);
    if (b.background === true)
      return refuse("background", "'background' responses are not supported; stream instead.");
    if (b.prompt != null) return refuse("prompt", "Stored prompt templates are not supported; send 'input'.");
  }
  const parsed = responsesRequestSchema.safeParse(body);
  if (!parsed.success) return zodRefusal(parsed.error);
  const r = parsed.data;
  const needs: ParsedChatRequest["needs"] = [{ need: "chat", param: "model" }];

  // Tools: functions only (gbt runs no hosted tools).
  const functions: Array<z.infer<typeof functionTool>> = [];
  for (const [index, tool] of (r.tools ?? []).entries()) {
    const type = (tool as { type?: unknown } | null)?.type;
    if (type !== "function") {
      return refuse(
        `tools[${index}].type`,
        `Invalid value for 'tools[${index}].type': only function tools are supported (got ${JSON.stringify(type ?? null)}).`,
      );
    }
    const one = functionTool.safeParse(tool);
    if (!one.success) {
      const refusal = zodRefusal(one.error);
      const param = `tools[${index}]${refusal.param ? `.${refusal.param}` : ""}`;
      return refuse(param, refusal.message.replace(/'[^']*'/, `'${param}'`));
    }
    functions.push(one.data);
  }
  const tools = toolDefinitions(
    functions.map((f) => ({
      name: f.name,
      ...(f.description != null ? { description: f.description } : {}),
      ...(f.parameters != null ? { parameters: f.parameters } : {}),
      ...(f.strict != null ? { strict: f.strict } : {}),
    })),
    (i) => `tools[${i}]`,
  );
  if (!tools.ok) return tools;
  let toolChoice: ToolChoice | undefined;
  if (r.tool_choice != null) {
    toolChoice = typeof r.tool_choice === "string" ? r.tool_choice : { name: r.tool_choice.name };
    if (
      typeof toolChoice === "object" &&
      !tools.value.some((t) => t.name === (toolChoice as { name: string }).name)
    ) {
      return refuse(
        "tool_choice",
        `Invalid value for 'tool_choice': no tool named '${toolChoice.name}' is in 'tools'.`,
      );
    }
    if (toolChoice !== "none" && toolChoice !== "auto" && tools.value.length === 0) {
      return refuse("tool_choice", "Invalid value for 'tool_choice': it needs 'tools' to choose from.");
    }
  }
  if (tools.value.length > 0 && toolChoice !== "none") needs.push({ need: "tools", param: "tools" });

  // Input: the conversation, as chat messages.
  const messages: ChatMessage[] = [];
  if (r.instructions != null && r.instructions !== "")
    messages.push({ role: "system", content: r.instructions });
  const calls = new Map<string, string>();
  if (typeof r.input === "string") messages.push({ role: "user", content: r.input });
  else {
    for (const [index, item] of r.input.entries()) {
      const at = `input[${index}]`;
      const type = (item as { type?: unknown } | null)?.type ?? "message";
      if (type === "message") {
        const one = messageItem.safeParse(item);
        if (!one.success) return prefixed(zodRefusal(one.error), at);
        const { role, content } = one.data;
        const images: ImagePart[] = [];
        let text = "";
        if (typeof content === "string") text = content;
        else
          for (const part of content) {
            if (part.type === "input_image") {
              images.push({ url: part.image_url, ...(part.detail ? { detail: part.detail } : {}) });
            } else text += part.type === "refusal" ? part.refusal : part.text;
          }
        if (images.length > 0) {
          if (role !== "user")
            return refuse(
              `${at}.content`,
              `Invalid value for '${at}.content': only user messages may carry images.`,
            );
          needs.push({ need: "vision", param: `${at}.content` });
        }
        messages.push({
          role: role === "developer" ? "system" : role,
          content: text,
          ...(images.length > 0 ? { images } : {}),
        });
      } else if (type === "function_call") {
        const one = functionCallItem.safeParse(item);
        if (!one.success) return prefixed(zodRefusal(one.error), at);
        const call: ToolCall = { id: one.data.call_id, name: one.data.name, arguments: one.data.arguments };
        calls.set(call.id, call.name);
        const last = messages[messages.length - 1];
        // Consecutive calls (and a preceding assistant text) are one assistant turn.
        if (last?.role === "assistant") last.toolCalls = [...(last.toolCalls ?? []), call];
        else messages.push({ role: "assistant", content: "", toolCalls: [call] });
        needs.push({ need: "tools", param: at });
      } else if (type === "function_call_output") {
        const one = functionOutputItem.safeParse(item);
        if (!one.success) return prefixed(zodRefusal(one.error), at);
        const callName = calls.get(one.data.call_id);
        if (callName === undefined) {
          return refuse(
            `${at}.call_id`,
            `Invalid value for '${at}.call_id': no earlier function_call item has call_id '${one.data.call_id}'.`,
          );
        }
        const output = one.data.output;
        messages.push({
          role: "tool",
          content:
            typeof output === "string"
              ? output
              : output.map((part) => ("text" in part ? part.text : "")).join(""),
          toolCallId: one.data.call_id,
          name: callName,
        });
      } else {
        return refuse(
          `${at}.type`,
          `Invalid value for '${at}.type': gbt accepts message, function_call and function_call_output items (got ${JSON.stringify(type)}).`,
        );
      }
    }
  }
  if (!messages.some((m) => m.role !== "system")) {
    return refuse("input", "Invalid value for 'input': the conversation has no user or assistant turn.");
  }

  let responseFormat: ResponseFormat | undefined;
  const format = r.text?.format;
  if (format?.type === "json_object") responseFormat = { type: "json_object" };
  else if (format?.type === "json_schema") {
    const bad = schemaRefusal(format.schema, "text.format.schema");
    if (bad) return bad;
    responseFormat = {
      type: "json_schema",
      name: format.name,
      schema: format.schema,
      ...(format.strict != null ? { strict: format.strict } : {}),
      ...(format.description !== undefined ? { description: format.description } : {}),
    };
  }
  if (responseFormat !== undefined) needs.push({ need: "jsonSchema", param: "text.format" });

  const request: Omit<ChatRequest, "signal"> = {
    model: r.model,
    messages,
    ...(r.max_output_tokens != null ? { maxTokens: r.max_output_tokens } : {}),
    ...(r.temperature != null ? { temperature: r.temperature } : {}),
    ...(r.top_p != null ? { topP: r.top_p } : {}),
    ...(tools.value.length > 0 ? { tools: tools.value } : {}),
    ...(toolChoice !== undefined ? { toolChoice } : {}),
    ...(r.parallel_tool_calls != null ? { parallelToolCalls: r.parallel_tool_calls } : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {}),
  };
  return {
    ok: true,
    value: {
      chat: { request, stream: r.stream === true, includeUsage: false, needs },
      settings: {
        instructions: r.instructions ?? null,
        maxOutputTokens: r.max_output_tokens ?? null,
        temperature: r.temperature ?? null,
        topP: r.top_p ?? null,
        toolChoice: r.tool_choice ?? "auto",
        tools: functions.map((f) => ({
          type: "function",
          name: f.name,
          description: f.description ?? null,
          parameters: f.parameters ?? null,
          strict: f.strict ?? null,
        })),
        parallelToolCalls: r.parallel_tool_calls ?? true,
        format: format ?? { type: "text" },
        metadata: r.metadata ?? {},
        user: r.user ?? null,
      },
    },
  };
}

function prefixed(refusal: Refusal, at: string): Refusal {
  const param = refusal.param ? `${at}.${refusal.param}` : at;
  return { ok: false, param, message: refusal.message.replace(/'[^']*'/, `'${param}'`) };
}

const newId = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;

type OutputItem =
  | {
      id: string;
      type: "message";
      status: string;
      role: "assistant";
      content: Array<Record<string, unknown>>;
    }
  | { id: string; type: "function_call"; status: string; call_id: string; name: string; arguments: string };

/**
 * Turns a chat backend's events into a Response: `write` receives each SSE event of the stream
 * (`event: <type>\ndata: <json>\n\n`); `response()` is the object as it stands (whole answers).
 * Content events (`response.output_text.delta`, `response.function_call_arguments.delta`) are one
 * per backend event, as the gateway counts them.
 */
export class ResponseBuilder {
  readonly id = newId("resp");
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private sequence = 0;
  private readonly output: OutputItem[] = [];
  private text: { item: Extract<OutputItem, { type: "message" }>; index: number; text: string } | null = null;
  /** The output index of each tool call, by the backend's call index. */
  private readonly calls = new Map<
    number,
    { item: Extract<OutputItem, { type: "function_call" }>; index: number }
  >();
  private status: "in_progress" | "completed" | "incomplete" = "in_progress";
  private usage: Usage | null = null;

  constructor(
    private readonly model: string,
    private readonly settings: ResponseSettings,
    private readonly write: ((event: string) => void) | null,
  ) {}

  private emit(type: string, fields: Record<string, unknown>): void {
    if (this.write === null) return;
    const data = JSON.stringify({ type, ...fields, sequence_number: this.sequence++ });
    this.write(`event: ${type}\ndata: ${data}\n\n`);
  }

  start(): void {
    this.emit("response.created", { response: this.response() });
    this.emit("response.in_progress", { response: this.response() });
  }

  /** One backend event; returns whether it was content. */
  event(event: ChatStreamEvent): boolean {
    if (event.type === "delta") {
      if (event.text === "") return false;
      this.closeCalls();
      if (this.text === null) {
        const item: Extract<OutputItem, { type: "message" }> = {
          id: newId("msg"),
          type: "message",
          status: "in_progress",
          role: "assistant",
          content: [],
        };
        this.text = { item, index: this.output.length, text: "" };
        this.output.push(item);
        this.emit("response.output_item.added", {
          output_index: this.text.index,
          item: { ...item, content: [] },
        });
        this.emit("response.content_part.added", {
          item_id: item.id,
          output_index: this.text.index,
          content_index: 0,
          part: { type: "output_text", text: "", annotations: [] },
        });
      }
      this.text.text += event.text;
      this.emit("response.output_text.delta", {
        item_id: this.text.item.id,
        output_index: this.text.index,
        content_index: 0,
        delta: event.text,
        logprobs: [],
      });
      return true;
    }
    if (event.type === "tool_call") {
      this.closeText();
      let call = this.calls.get(event.index);
      if (call === undefined) {
        const item: Extract<OutputItem, { type: "function_call" }> = {
          id: newId("fc"),
          type: "function_call",
          status: "in_progress",
          call_id: event.id ?? newId("call"),
          name: event.name ?? "",
          arguments: "",
        };
        call = { item, index: this.output.length };
        this.calls.set(event.index, call);
        this.output.push(item);
        this.emit("response.output_item.added", { output_index: call.index, item: { ...item } });
      }
      if (event.name !== undefined && call.item.name === "") call.item.name = event.name;
      if (event.arguments === "") return false;
      call.item.arguments += event.arguments;
      this.emit("response.function_call_arguments.delta", {
        item_id: call.item.id,
        output_index: call.index,
        delta: event.arguments,
      });
      return true;
    }
    return false;
  }

  private closeText(): void {
    if (this.text === null) return;
    const { item, index, text } = this.text;
    const part = { type: "output_text", text, annotations: [] };
    item.content = [part];
    item.status = "completed";
    this.emit("response.output_text.done", {
      item_id: item.id,
      output_index: index,
      content_index: 0,
      text,
      logprobs: [],
    });
    this.emit("response.content_part.done", {
      item_id: item.id,
      output_index: index,
      content_index: 0,
      part,
    });
    this.emit("response.output_item.done", { output_index: index, item });
    this.text = null;
  }

  private closeCalls(): void {
    for (const { item, index } of this.calls.values()) {
      if (item.status === "completed") continue;
      item.status = "completed";
      this.emit("response.function_call_arguments.done", {
        item_id: item.id,
        output_index: index,
        name: item.name,
        arguments: item.arguments,
      });
      this.emit("response.output_item.done", { output_index: index, item });
    }
  }

  /** The end: closes open items and emits `response.completed` (or `response.incomplete`). */
  finish(reason: FinishReason, usage: Usage): void {
    this.closeText();
    this.closeCalls();
    this.status = reason === "length" ? "incomplete" : "completed";
    this.usage = usage;
    this.emit(this.status === "completed" ? "response.completed" : "response.incomplete", {
      response: this.response(),
    });
  }

  /** A failure after the stream started: OpenAI's `error` event. */
  fail(code: string, message: string): void {
    this.emit("error", { code, message, param: null });
  }

  response(): Record<string, unknown> {
    const usage = this.usage;
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status: this.status,
      error: null,
      incomplete_details: this.status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: this.settings.instructions,
      max_output_tokens: this.settings.maxOutputTokens,
      model: this.model,
      output: this.output.map((item) => ({ ...item })),
      parallel_tool_calls: this.settings.parallelToolCalls,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: false,
      temperature: this.settings.temperature,
      text: { format: this.settings.format },
      tool_choice: this.settings.toolChoice,
      tools: this.settings.tools,
      top_p: this.settings.topP,
      truncation: "disabled",
      usage:
        usage === null
          ? null
          : {
              input_tokens: usage.promptTokens,
              input_tokens_details: { cached_tokens: 0 },
              output_tokens: usage.completionTokens,
              output_tokens_details: { reasoning_tokens: 0 },
              total_tokens: usage.promptTokens + usage.completionTokens,
            },
      user: this.settings.user,
      metadata: this.settings.metadata,
    };
  }
}
