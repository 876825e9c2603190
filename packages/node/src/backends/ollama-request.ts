/**
 * ChatRequest → Ollama's `/api/chat` body: messages (tool calls, tool results, images), tools,
 * `format` and the sampling options. Everything a consumer can get wrong here is refused with the
 * OpenAI parameter it came from, before anything reaches Ollama.
 *
 * Ollama cannot force a call: it has no `tool_choice`. `required` and a named function are
 * served by offering the tools (for a named one, only that tool), and an answer without a call is
 * then the model's answer, passed on as it is.
 */
import { HttpError } from "@gbt/protocol";
import type { Message, ToolCall as OllamaClientToolCall, Options, Tool } from "ollama";
import {
  type ChatMessage,
  type ChatRequest,
  type CompletionRequest,
  type ImagePart,
  openAISampling,
  type ToolDefinition,
} from "./types.js";

/** A tool call as Ollama takes it back in the history (`id` since Ollama 0.12; older ones ignore it). */
export type OllamaToolCall = OllamaClientToolCall & { id?: string };

/**
 * A message as Ollama reads it. Images are raw bytes: the client base64-encodes byte arrays
 * itself, while a string it would first try as a local file path, which a node must never do with
 * a consumer's text.
 */
export type OllamaMessage = Omit<Message, "images" | "tool_calls"> & {
  images?: Uint8Array[];
  tool_calls?: OllamaToolCall[];
  tool_call_id?: string;
};

export interface OllamaChatParts {
  messages: OllamaMessage[];
  tools?: Tool[];
  format?: string | Record<string, unknown>;
  options: Partial<Options>;
}

/** The parts of `/api/chat` that come from the request (model, stream and keep_alive excepted). */
export function ollamaChatParts(request: ChatRequest): OllamaChatParts {
  const tools = ollamaTools(request);
  const format = ollamaFormat(request);
  return {
    messages: ollamaMessages(request.messages),
    ...(tools !== undefined ? { tools } : {}),
    ...(format !== undefined ? { format } : {}),
    options: ollamaOptions(request),
  };
}

/** The messages, with each tool result named after the call it answers. */
export function ollamaMessages(messages: ChatMessage[]): OllamaMessage[] {
  const callNames = new Map<string, string>();
  return messages.map((message, index) => {
    switch (message.role) {
      case "assistant": {
        const calls = message.toolCalls ?? [];
        for (const call of calls) callNames.set(call.id, call.name);
        return {
          role: "assistant",
          content: message.content,
          ...(calls.length > 0
            ? {
                tool_calls: calls.map((call) => ({
                  ...(call.id !== "" ? { id: call.id } : {}),
                  function: { name: call.name, arguments: callArguments(call.name, call.arguments, index) },
                })),
              }
            : {}),
        };
      }
      case "tool": {
        const name =
          message.name ?? (message.toolCallId !== undefined ? callNames.get(message.toolCallId) : undefined);
        return {
          role: "tool",
          content: message.content,
          ...(name !== undefined ? { tool_name: name } : {}),
          ...(message.toolCallId !== undefined ? { tool_call_id: message.toolCallId } : {}),
        };
      }
      default:
        return {
          role: message.role,
          content: message.content,
          ...(message.images !== undefined && message.images.length > 0
            ? { images: message.images.map((image) => imageBytes(image, index)) }
            : {}),
        };
    }
  });
}

/**
 * A history call's arguments, from OpenAI's JSON text to the object Ollama carries. An empty text
 * is a call without arguments (some clients send "" rather than "{}").
 */
function callArguments(name: string, text: string, index: number): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(
      "invalid_value",
      `The arguments of the call to '${name}' in messages[${index}].tool_calls are not a JSON object; send them as the JSON text of an object, as the model answered them.`,
      `messages[${index}].tool_calls`,
    );
  }
  return value as Record<string, unknown>;
}

const DATA_URL = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[^;,]*)*?);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of a `data:…;base64,` image; any other URL is refused (a node never fetches one). */
function imageBytes(image: ImagePart, index: number): Uint8Array {
  const param = `messages[${index}].content`;
  const match = DATA_URL.exec(image.url);
  if (match === null) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(image.url)?.[1]?.toLowerCase();
    throw new HttpError(
      "invalid_value",
      scheme === "data"
        ? "An image data: URL must be base64 (data:image/…;base64,…)."
        : `Only data: URLs (data:image/…;base64,…) are accepted for images on this backend${scheme ? ` (this one is ${scheme}:)` : ""}; a node never fetches a URL it is given. Send the image inline as base64.`,
      param,
    );
  }
  const payload = image.url.slice(match[0].length).replace(/\s+/g, "");
  if (payload === "" || payload.length % 4 === 1 || !BASE64.test(payload)) {
    throw new HttpError("invalid_value", "An image data: URL holds no valid base64 payload.", param);
  }
  return Buffer.from(payload, "base64");
}

/** The tools to offer, after tool_choice (see the module header). */
export function ollamaTools(request: ChatRequest): Tool[] | undefined {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? "auto";
  if (tools.length === 0 || choice === "none") return undefined;
  if (typeof choice === "object") {
    const named = tools.find((tool) => tool.name === choice.name);
    if (named === undefined) {
      throw new HttpError(
        "invalid_value",
        `tool_choice names the function '${choice.name}', which is not among the tools.`,
        "tool_choice",
      );
    }
    return [ollamaTool(named)];
  }
  return tools.map(ollamaTool);
}

function ollamaTool(tool: ToolDefinition): Tool {
  return {
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description !== undefined ? { description: tool.description } : {}),
      // Ollama's template renders `parameters` as an object schema; absent means "any object".
      parameters: (tool.parameters ?? { type: "object", properties: {} }) as NonNullable<
        Tool["function"]["parameters"]
      >,
    },
  };
}

/** `format`: "json" for json_object, the schema itself for json_schema. */
export function ollamaFormat(request: ChatRequest): string | Record<string, unknown> | undefined {
  const format = request.responseFormat;
  if (format === undefined || format.type === "text") return undefined;
  return format.type === "json_object" ? "json" : format.schema;
}

/** The sampling options Ollama takes (only those set). */
export function ollamaOptions(request: ChatRequest | CompletionRequest): Partial<Options> {
  // Ollama's options are OpenAI's names, but for the token bound.
  const { max_tokens, ...sampling } = openAISampling(request);
  return { ...(max_tokens !== undefined ? { num_predict: max_tokens } : {}), ...sampling };
}
