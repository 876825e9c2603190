/**
 * A loopback server speaking the OpenAI chat-completions protocol with tool calls, answering
 * from a script: for tests of the LLM planners (the random test model cannot plan). It checks the
 * request as an OpenAI server would (model, messages, well-formed tools), answers
 * `finish_reason: "tool_calls"` with `tool_calls[].function.arguments` as JSON text, and also
 * speaks Ollama's `/api/chat` (arguments as objects) for the Ollama planner. Every request is kept.
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ScriptedToolCall {
  name: string;
  /** An object (encoded as JSON text for OpenAI), or raw text to send malformed arguments. */
  arguments: unknown;
}

export interface ScriptedAnswer {
  content?: string | null;
  toolCalls?: ScriptedToolCall[];
  /** Answer with this HTTP status and an OpenAI error body instead. */
  status?: number;
}

export interface ScriptedChatRequest {
  path: string;
  body: {
    model?: string;
    messages?: { role: string; content: string }[];
    tools?: { type: string; function: { name: string; description?: string; parameters?: unknown } }[];
  };
}

export interface ScriptedChatServer {
  /** OpenAI base URL (with /v1). */
  url: string;
  /** Server root (Ollama host). */
  origin: string;
  readonly requests: ScriptedChatRequest[];
  close(): Promise<void>;
}

/** `script` sees the last user message and the whole request. */
export async function startScriptedChatServer(
  script: (lastUserMessage: string, request: ScriptedChatRequest) => ScriptedAnswer,
): Promise<ScriptedChatServer> {
  const requests: ScriptedChatRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      if (req.method === "GET" && path === "/v1/models") {
        return send(200, {
          object: "list",
          data: [{ id: "scripted", object: "model", created: 0, owned_by: "test" }],
        });
      }
      if (req.method !== "POST" || (path !== "/v1/chat/completions" && path !== "/api/chat")) {
        return send(404, {
          error: { message: `No route ${req.method} ${path}`, type: "invalid_request_error" },
        });
      }
      let body: ScriptedChatRequest["body"];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return send(400, {
          error: {
            message: "We could not parse the JSON body of your request.",
            type: "invalid_request_error",
          },
        });
      }
      const request = { path, body };
      requests.push(request);
      const invalid = validateRequest(body);
      if (invalid)
        return send(400, {
          error: { message: invalid, type: "invalid_request_error", param: null, code: null },
        });
      const last = [...(body.messages ?? [])].reverse().find((m) => m.role === "user")?.content ?? "";
      const answer = script(last, request);
      if (answer.status)
        return send(answer.status, { error: { message: "scripted failure", type: "server_error" } });
      const calls = answer.toolCalls ?? [];
      if (path === "/api/chat") {
        return send(200, {
          model: body.model,
          created_at: new Date().toISOString(),
          message: {
            role: "assistant",
            content: answer.content ?? "",
            ...(calls.length > 0
              ? { tool_calls: calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })) }
              : {}),
          },
          done: true,
          done_reason: "stop",
        });
      }
      send(200, {
        id: `chatcmpl-${randomUUID()}`,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: answer.content ?? null,
              refusal: null,
              ...(calls.length > 0
                ? {
                    tool_calls: calls.map((c) => ({
                      id: `call_${randomUUID().slice(0, 8)}`,
                      type: "function",
                      function: {
                        name: c.name,
                        arguments:
                          typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments),
                      },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: calls.length > 0 ? "tool_calls" : "stop",
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/v1`,
    origin,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What an OpenAI server rejects with 400: no model, no messages, malformed tools. */
function validateRequest(body: ScriptedChatRequest["body"]): string | undefined {
  if (typeof body.model !== "string" || body.model === "") return "you must provide a model parameter";
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    return "messages must be a non-empty array";
  for (const tool of body.tools ?? []) {
    if (tool.type !== "function") return "tools[].type must be 'function'";
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(tool.function?.name ?? ""))
      return `Invalid 'tools[].function.name': '${tool.function?.name}'`;
    const parameters = tool.function.parameters as { type?: string } | undefined;
    if (parameters && parameters.type !== "object")
      return "tools[].function.parameters must be a JSON Schema object";
  }
  return undefined;
}
