/**
 * OpenAI chat messages → node-llama-cpp's chat history. An assistant turn's tool calls and the
 * `tool` messages that answer them become function-call items of one model response (each result
 * paired with its call by id), which the model's chat wrapper renders in the model's own call
 * syntax; text that follows the results continues that same response, as node-llama-cpp expects.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from "node-llama-cpp";
import type { ChatMessage } from "./types.js";

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The chat history of `messages`, ending with an open model response for the answer (a trailing
 * assistant message, or tool results, are continued). `systemNote` is appended to the system
 * message (or becomes one), e.g. the description of the request's tools.
 */
export function toChatHistory(messages: ChatMessage[], systemNote?: string): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  /** Calls of the current model response still waiting for their result, by id. */
  const openCalls = new Map<string, ChatModelFunctionCall>();
  const lastModel = (): ChatModelResponse | undefined => {
    const last = history.at(-1);
    return last?.type === "model" ? last : undefined;
  };

  for (const message of messages) {
    if (message.role === "assistant") {
      // After tool results the model keeps answering in the same response.
      const continues =
        openCalls.size === 0 && lastModel() !== undefined && lastModel()?.response.some(isCall);
      const response = continues
        ? (lastModel() as ChatModelResponse)
        : { type: "model" as const, response: [] };
      if (!continues) {
        history.push(response);
        openCalls.clear();
      }
      if (message.content !== "") response.response.push(message.content);
      (message.toolCalls ?? []).forEach((call, i) => {
        const item: ChatModelFunctionCall = {
          type: "functionCall",
          name: call.name,
          params: parseArguments(call.arguments),
          result: "",
          ...(i === 0 ? { startsNewChunk: true } : {}),
        };
        response.response.push(item);
        openCalls.set(call.id, item);
      });
      continue;
    }
    if (message.role === "tool") {
      const call = message.toolCallId === undefined ? undefined : openCalls.get(message.toolCallId);
      if (call && lastModel()) {
        call.result = message.content;
        openCalls.delete(message.toolCallId as string);
        continue;
      }
      // A result with no call to pair it with: the model still sees it, as the user's text.
      history.push({
        type: "user",
        text: `Result of ${message.name ?? "a function call"}: ${message.content}`,
      });
      continue;
    }
    openCalls.clear();
    if (message.role === "system") history.push({ type: "system", text: message.content });
    else history.push({ type: "user", text: message.content });
  }

  if (systemNote !== undefined && systemNote !== "") {
    const system = history.find((item) => item.type === "system");
    if (system?.type === "system" && typeof system.text === "string")
      system.text = system.text === "" ? systemNote : `${system.text}\n\n${systemNote}`;
    else history.unshift({ type: "system", text: systemNote });
  }
  // A trailing model response is continued; otherwise the template opens a new one.
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}

function isCall(item: ChatModelResponse["response"][number]): boolean {
  return typeof item === "object" && item.type === "functionCall";
}
