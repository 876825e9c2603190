/**
 * A planner on any OpenAI-compatible chat-completions endpoint (OpenAI, the gbt gateway, `gbt
 * serve`, vLLM, llama.cpp server…) through the official `openai` client: the allowlist is given as
 * function tools, the model's tool calls become raw proposals, its text the reply.
 */
import { GbtError } from "@gbt/protocol";
import OpenAI from "openai";
import { allowlistTools, chatMessages, collectToolCalls, parseToolArguments } from "./allowlist-tools.js";
import type { Planner, PlannerReply } from "./planner.js";

export interface OpenAIPlannerOptions {
  /** Base URL including /v1, e.g. http://127.0.0.1:8080/v1. */
  baseURL: string;
  model: string;
  /** Bearer key; local servers usually accept any. Never logged. */
  apiKey?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const MAX_REPLY = 2000;

export function createOpenAIPlanner(options: OpenAIPlannerOptions): Planner {
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey || "gbt-operator",
    timeout: options.timeoutMs ?? 120_000,
    maxRetries: 0,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return {
    kind: "llm",
    label: `openai ${options.model}`,
    endpoint: options.baseURL,
    async plan(context): Promise<PlannerReply> {
      const tools = allowlistTools(context.allowlist);
      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await client.chat.completions.create(
          {
            model: options.model,
            messages: chatMessages(context),
            tools: tools.map((tool) => ({
              type: "function" as const,
              function: { name: tool.name, description: tool.description, parameters: tool.parameters },
            })),
            tool_choice: "auto",
            temperature: 0,
          },
          context.signal ? { signal: context.signal } : {},
        );
      } catch (cause) {
        throw plannerError(options.baseURL, cause);
      }
      const message = completion.choices?.[0]?.message;
      if (!message) {
        return {
          say: "",
          proposals: [],
          malformed: [{ code: "INVALID_OBJECT", message: "the model returned no message" }],
        };
      }
      const calls = (message.tool_calls ?? []).map((call) =>
        call.type === "function"
          ? {
              name: String(call.function?.name ?? ""),
              args: parseToolArguments(String(call.function?.arguments ?? "")),
            }
          : { name: String(call.type), args: { ok: false as const, message: "is not a function call" } },
      );
      return { say: (message.content ?? "").slice(0, MAX_REPLY), ...collectToolCalls(tools, calls) };
    },
  };
}

function plannerError(baseURL: string, cause: unknown): GbtError {
  if (cause instanceof OpenAI.APIError && cause.status !== undefined) {
    return new GbtError(
      "BACKEND_UNREACHABLE",
      `The planning model at ${baseURL} answered HTTP ${cause.status}: ${cause.message}`,
      {
        hint: "Check --planner-url and --planner-model (and the API key), or use --planner offline.",
        cause,
      },
    );
  }
  return new GbtError("BACKEND_UNREACHABLE", `Cannot reach the planning model at ${baseURL}.`, {
    hint: "Start it, fix --planner-url, or use --planner offline.",
    cause,
  });
}
