/**
 * Function calling on the embedded backend, the parts that do not touch llama.cpp:
 *
 * - which mode a request runs in ({@link resolveToolMode}): text, a forced call (`required` or a
 *   named function: a grammar makes the model write `{"name": …, "arguments": {…}}`, one call per
 *   answer), or `auto` (node-llama-cpp's chat wrapper decides, in the model's own call syntax);
 * - the JSON Schema of a forced call ({@link forcedCallSchema});
 * - {@link ForcedCallStream}: reads that JSON as it is generated and turns it into OpenAI-style
 *   tool_call events: the name once known, then the arguments object in fragments as they come.
 *
 * The node never runs a tool: a call ends the answer (finish reason `tool_calls`).
 */
import { randomBytes } from "node:crypto";
import { httpError } from "@gbt/protocol";
import type { GbnfJsonSchema } from "node-llama-cpp";
import { toGrammarSchema } from "./embedded-grammar.js";
import type { ChatRequest, ChatStreamEvent, ToolDefinition } from "./types.js";

export type ToolMode =
  | { kind: "text"; tools: ToolDefinition[] }
  | { kind: "forced"; tools: ToolDefinition[] }
  | { kind: "auto"; tools: ToolDefinition[] };

/** A fresh OpenAI-style call id. */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString("base64url")}`;
}

/**
 * How a request treats its tools. No tools, or `none`: text (the tools, if any, are only
 * described in the system prompt). `required`: a call to any of them. A name: a call to that one
 * (400 `tool_choice` when no tool has that name). `auto` (the default): the model decides.
 */
export function resolveToolMode(request: Pick<ChatRequest, "tools" | "toolChoice">): ToolMode {
  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? "auto";
  if (typeof choice === "object") {
    const chosen = tools.find((tool) => tool.name === choice.name);
    if (!chosen) {
      throw httpError(
        "invalid_value",
        `tool_choice names the function '${choice.name}', which is not among the request's tools${tools.length > 0 ? ` (${tools.map((tool) => tool.name).join(", ")})` : ""}.`,
        { param: "tool_choice" },
      );
    }
    return { kind: "forced", tools: [chosen] };
  }
  if (choice === "required") {
    if (tools.length === 0)
      throw httpError("invalid_value", "tool_choice is 'required' but the request has no tools.", {
        param: "tool_choice",
      });
    return { kind: "forced", tools };
  }
  if (tools.length === 0 || choice === "none") return { kind: "text", tools };
  return { kind: "auto", tools };
}

/** The param a tool's schema is reported under (its index in the request's `tools`). */
export function toolParam(request: Pick<ChatRequest, "tools">, tool: ToolDefinition): string {
  return `tools[${Math.max(0, (request.tools ?? []).indexOf(tool))}].function.parameters`;
}

/** A tool's parameters as a grammar schema; absent parameters: any object. */
export function toolParamsSchema(request: Pick<ChatRequest, "tools">, tool: ToolDefinition): GbnfJsonSchema {
  return toGrammarSchema(
    tool.parameters ?? { type: "object", additionalProperties: true },
    toolParam(request, tool),
  );
}

/**
 * The JSON Schema of one forced call: `{"name": <one of the tools>, "arguments": <its parameters>}`,
 * a union over the tools so each name comes with its own arguments. `name` comes first: the
 * grammar keeps the property order, so the name streams before the arguments.
 */
export function forcedCallSchema(
  request: Pick<ChatRequest, "tools">,
  tools: ToolDefinition[],
): GbnfJsonSchema {
  const branches = tools.map((tool) => ({
    type: "object",
    properties: { name: { const: tool.name }, arguments: toolParamsSchema(request, tool) },
    required: ["name", "arguments"],
    additionalProperties: false,
  }));
  return (branches.length === 1 ? branches[0] : { oneOf: branches }) as GbnfJsonSchema;
}

/** The system-prompt text that tells the model about forced calls (or, in text mode, the tools as context). */
export function describeTools(tools: ToolDefinition[], mode: "forced" | "text"): string {
  const list = tools
    .map((tool) => {
      const params = tool.parameters ? ` Parameters (JSON Schema): ${JSON.stringify(tool.parameters)}` : "";
      return `- ${tool.name}${tool.description ? `: ${tool.description}` : ""}.${params}`;
    })
    .join("\n");
  return mode === "forced"
    ? `You call one of these functions by answering with a JSON object {"name": <function name>, "arguments": <its parameters>}:\n${list}`
    : `These functions exist for reference; do not call them, answer in text:\n${list}`;
}

/**
 * Reads the generated JSON of a forced call piece by piece and emits tool_call events: the first
 * (`index`, `id`, `name`, `arguments: ""`) as soon as the name is complete, then each new piece of
 * the `arguments` value as a fragment. Tracks strings and nesting, so braces inside strings and
 * the object's own closing brace are told apart from the arguments' text.
 */
export class ForcedCallStream {
  readonly id = newToolCallId();
  /** The call's name, once read. */
  name: string | undefined;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The current top-level string (a key or the name value) and the last key read. */
  private token = "";
  private key: string | undefined;
  private afterColon = false;
  /** Depth at which the arguments value began, while inside it. */
  private argumentsDepth: number | undefined;
  private argumentsDone = false;
  private argumentsText = "";
  private pending = "";
  private announced = false;

  constructor(private readonly index = 0) {}

  /** Feeds generated text; returns the events it completes. */
  push(text: string): ChatStreamEvent[] {
    for (const char of text) this.read(char);
    const events: ChatStreamEvent[] = [];
    if (!this.announced && this.name !== undefined) {
      this.announced = true;
      events.push({ type: "tool_call", index: this.index, id: this.id, name: this.name, arguments: "" });
    }
    if (this.announced && this.pending !== "") {
      events.push({ type: "tool_call", index: this.index, arguments: this.pending });
      this.pending = "";
    }
    return events;
  }

  /** The arguments JSON read so far (the whole object once the call is complete). */
  get arguments(): string {
    return this.argumentsText;
  }

  /** Whether the call's JSON was read to its end. */
  get complete(): boolean {
    return this.argumentsDone && this.name !== undefined && this.depth === 0;
  }

  private read(char: string): void {
    const inArguments = this.argumentsDepth !== undefined;
    if (inArguments) this.capture(char);
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (char === "\\") this.escaped = true;
      else if (char === '"') this.inString = false;
      if (!inArguments && this.depth === 1) {
        this.token += char;
        if (!this.inString) this.topLevelString();
      }
      return;
    }
    if (char === '"') {
      this.inString = true;
      if (!inArguments && this.depth === 1) this.token = char;
      return;
    }
    if (char === "{" || char === "[") {
      this.depth++;
      if (
        !inArguments &&
        this.depth === 2 &&
        this.key === "arguments" &&
        this.afterColon &&
        !this.argumentsDone
      ) {
        this.argumentsDepth = 1;
        this.capture(char);
      }
      return;
    }
    if (char === "}" || char === "]") {
      this.depth--;
      if (inArguments && this.depth === this.argumentsDepth) {
        this.argumentsDepth = undefined;
        this.argumentsDone = true;
      }
      return;
    }
    if (!inArguments && this.depth === 1) {
      if (char === ":") this.afterColon = true;
      else if (char === ",") {
        this.afterColon = false;
        this.key = undefined;
      }
    }
  }

  private capture(char: string): void {
    this.argumentsText += char;
    this.pending += char;
  }

  /** A complete string at the top level: a key, or (after `"name":`) the name. */
  private topLevelString(): void {
    const value = JSON.parse(this.token) as string;
    if (!this.afterColon) this.key = value;
    else if (this.key === "name") this.name = value;
    this.token = "";
  }
}
