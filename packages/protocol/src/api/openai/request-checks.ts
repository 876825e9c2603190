/**
 * What makes an OpenAI request wrong whichever backend serves it, checked where the request first
 * arrives (the gateway before routing, a relaying node before passing it on), so that a malformed
 * request is a 400 naming the field, before any work is done or billed: a tool whose parameters
 * are not a JSON Schema, a duplicate or malformed tool name, a tool_choice naming no tool, a
 * `tool` message (or `function_call_output` item) answering no earlier call, a response format
 * whose schema is not one. The rest of the body is the backend's to judge.
 */
import { jsonSchemaProblem } from "./json-schema-check.js";

export interface RequestProblem {
  param: string;
  message: string;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_TOOLS = 128;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const problem = (param: string, why: string): RequestProblem => ({
  param,
  message: `Invalid value for '${param}': ${why}.`,
});

function schemaProblem(schema: unknown, param: string): RequestProblem | null {
  const wrong = jsonSchemaProblem(schema);
  return wrong === null ? null : problem(param, `not a usable JSON Schema (${wrong})`);
}

/** The function tools' names, or the first problem. `at(i)` names tool i's function object. */
function toolNames(
  tools: unknown,
  functionOf: (tool: Record<string, unknown>) => unknown,
  at: (i: number) => string,
): Set<string> | RequestProblem {
  const names = new Set<string>();
  if (tools === undefined || tools === null) return names;
  if (!Array.isArray(tools)) return problem("tools", "a list of tools is required");
  if (tools.length > MAX_TOOLS) return problem("tools", `at most ${MAX_TOOLS} tools per request`);
  for (const [i, tool] of tools.entries()) {
    if (!isObject(tool)) return problem(`tools[${i}]`, "a tool object is required");
    if (tool.type !== "function") continue; // other tool types are the backend's to accept or refuse
    const fn = functionOf(tool);
    if (!isObject(fn)) return problem(at(i), "a function object is required");
    if (typeof fn.name !== "string" || !NAME.test(fn.name)) {
      return problem(`${at(i)}.name`, "a name of 1–64 letters, digits, underscores or dashes is required");
    }
    if (names.has(fn.name)) return problem(at(i), `the name '${fn.name}' is used twice`);
    names.add(fn.name);
    if (fn.parameters !== undefined && fn.parameters !== null) {
      const bad = schemaProblem(fn.parameters, `${at(i)}.parameters`);
      if (bad) return bad;
    }
  }
  return names;
}

function choiceProblem(named: string | undefined, names: Set<string>): RequestProblem | null {
  if (named === undefined) return null;
  return names.has(named) ? null : problem("tool_choice", `no tool named '${named}' is in 'tools'`);
}

/** `POST /v1/chat/completions`. With `allowN`, n > 1 is left to the backend. */
export function chatRequestProblem(
  body: Record<string, unknown>,
  options: { allowN?: boolean } = {},
): RequestProblem | null {
  if (!options.allowN && typeof body.n === "number" && body.n > 1) {
    return problem("n", "gbt answers one choice per request (n = 1); send n requests instead");
  }
  const names = toolNames(
    body.tools,
    (tool) => tool.function,
    (i) => `tools[${i}].function`,
  );
  if (!(names instanceof Set)) return names;
  const choice = body.tool_choice;
  const named = isObject(choice) && isObject(choice.function) ? choice.function.name : undefined;
  const badChoice = choiceProblem(typeof named === "string" ? named : undefined, names);
  if (badChoice) return badChoice;
  if (Array.isArray(body.messages)) {
    const calls = new Set<string>();
    for (const [i, message] of body.messages.entries()) {
      if (!isObject(message)) continue;
      if (message.role === "assistant" && Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls)
          if (isObject(call) && typeof call.id === "string") calls.add(call.id);
      } else if (message.role === "tool") {
        const id = message.tool_call_id;
        if (typeof id !== "string" || !calls.has(id)) {
          return problem(
            `messages[${i}].tool_call_id`,
            `no earlier assistant message has a tool call with id '${String(id)}'`,
          );
        }
      }
    }
  }
  const format = body.response_format;
  if (isObject(format) && format.type === "json_schema" && isObject(format.json_schema)) {
    const schema = format.json_schema.schema;
    if (schema !== undefined) return schemaProblem(schema, "response_format.json_schema.schema");
  }
  return null;
}

/** `POST /v1/responses`. */
export function responsesRequestProblem(body: Record<string, unknown>): RequestProblem | null {
  const names = toolNames(
    body.tools,
    (tool) => tool,
    (i) => `tools[${i}]`,
  );
  if (!(names instanceof Set)) return names;
  const choice = body.tool_choice;
  const named = isObject(choice) && choice.type === "function" ? choice.name : undefined;
  const badChoice = choiceProblem(typeof named === "string" ? named : undefined, names);
  if (badChoice) return badChoice;
  if (Array.isArray(body.input)) {
    const calls = new Set<string>();
    for (const [i, item] of body.input.entries()) {
      if (!isObject(item)) continue;
      if (item.type === "function_call" && typeof item.call_id === "string") calls.add(item.call_id);
      else if (item.type === "function_call_output") {
        if (typeof item.call_id !== "string" || !calls.has(item.call_id)) {
          return problem(
            `input[${i}].call_id`,
            `no earlier function_call item has call_id '${String(item.call_id)}'`,
          );
        }
      }
    }
  }
  const text = body.text;
  const format = isObject(text) ? text.format : undefined;
  if (isObject(format) && format.type === "json_schema")
    return schemaProblem(format.schema, "text.format.schema");
  return null;
}
