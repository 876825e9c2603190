/**
 * A planner on an Ollama server through the `ollama` client: the allowlist as tools, tool calls
 * (whose arguments Ollama already decodes to objects) become raw proposals.
 */
import { GbtError } from "@gbt/protocol";
import { Ollama } from "ollama";
import { allowlistTools, chatMessages, collectToolCalls } from "./allowlist-tools.js";
import type { Planner, PlannerReply } from "./planner.js";

export interface OllamaPlannerOptions {
  /** e.g. http://127.0.0.1:11434 */
  host: string;
  model: string;
  fetch?: typeof fetch;
}

const MAX_REPLY = 2000;

export function createOllamaPlanner(options: OllamaPlannerOptions): Planner {
  const client = new Ollama({ host: options.host, ...(options.fetch ? { fetch: options.fetch } : {}) });
  return {
    kind: "llm",
    label: `ollama ${options.model}`,
    endpoint: options.host,
    async plan(context): Promise<PlannerReply> {
      const tools = allowlistTools(context.allowlist);
      const abort = () => client.abort();
      context.signal?.addEventListener("abort", abort, { once: true });
      let response: Awaited<ReturnType<Ollama["chat"]>>;
      try {
        response = await client.chat({
          model: options.model,
          messages: chatMessages(context),
          tools: tools.map((tool) => ({
            type: "function",
            function: {
              name: tool.name,
              description: tool.description,
              parameters: tool.parameters as never,
            },
          })),
          stream: false,
          options: { temperature: 0 },
        });
      } catch (cause) {
        throw new GbtError(
          "BACKEND_UNREACHABLE",
          `The Ollama planner at ${options.host} failed: ${(cause as Error).message}`,
          {
            hint: "Start Ollama, pull the model (--planner-model), fix --planner-url, or use --planner offline.",
            cause,
          },
        );
      } finally {
        context.signal?.removeEventListener("abort", abort);
      }
      const message = response?.message;
      const rawCalls: unknown[] = Array.isArray(message?.tool_calls) ? message.tool_calls : [];
      const calls = rawCalls.map((call) => {
        const fn = (call as { function?: { name?: unknown; arguments?: unknown } })?.function;
        const args = fn?.arguments;
        return {
          name: String(fn?.name ?? ""),
          args:
            typeof args === "string"
              ? (() => {
                  try {
                    return { ok: true as const, value: JSON.parse(args) as unknown };
                  } catch {
                    return { ok: false as const, message: "its arguments are not valid JSON" };
                  }
                })()
              : { ok: true as const, value: args },
        };
      });
      const say = typeof message?.content === "string" ? message.content.slice(0, MAX_REPLY) : "";
      return { say, ...collectToolCalls(tools, calls) };
    },
  };
}
