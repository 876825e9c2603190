import { describe, expect, it } from "vitest";
import { jsonSchemaProblem } from "./json-schema-check.js";
import { chatRequestProblem, responsesRequestProblem } from "./request-checks.js";

const user = { role: "user", content: "hi" };
const fn = (name: string, parameters?: unknown) => ({ type: "function", function: { name, parameters } });

describe("jsonSchemaProblem", () => {
  it("accepts real schemas, booleans and unknown keywords", () => {
    for (const schema of [
      {},
      true,
      { type: "object", properties: { a: { type: ["string", "null"] } }, required: ["a"], "x-vendor": 1 },
      { anyOf: [{ type: "integer", minimum: 0 }, { enum: ["x"] }], $defs: { d: { type: "boolean" } } },
      { type: "array", items: [{ type: "string" }], minItems: 1 },
    ]) {
      expect(jsonSchemaProblem(schema)).toBeNull();
    }
  });

  it("names what is not a schema, and where", () => {
    expect(jsonSchemaProblem([])).toMatch(/must be an object/);
    expect(jsonSchemaProblem({ type: "objekt" })).toMatch(/^\/type/);
    expect(jsonSchemaProblem({ properties: { a: { required: "a" } } })).toBe(
      "/properties/a/required must be a list of property names",
    );
    expect(jsonSchemaProblem({ pattern: "(" })).toMatch(/not a valid regular expression/);
    expect(jsonSchemaProblem({ anyOf: [] })).toMatch(/non-empty list/);
    expect(jsonSchemaProblem({ maxLength: -1 })).toMatch(/non-negative integer/);
  });

  it("bounds depth and size, so a hostile schema costs little", () => {
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { items: deep };
    expect(jsonSchemaProblem(deep)).toMatch(/deeper than 32/);
    const wide = { properties: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`p${i}`, {}])) };
    expect(jsonSchemaProblem(wide)).toMatch(/more than 10000/);
  });
});

describe("chatRequestProblem", () => {
  it("passes a valid tool round trip", () => {
    expect(
      chatRequestProblem({
        messages: [
          user,
          {
            role: "assistant",
            tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "call_1", content: "r" },
        ],
        tools: [fn("f", { type: "object" })],
        tool_choice: { type: "function", function: { name: "f" } },
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object" } } },
      }),
    ).toBeNull();
  });

  it.each([
    [{ messages: [user], n: 2 }, "n"],
    [{ messages: [user], tools: [fn("f", { type: 1 })] }, "tools[0].function.parameters"],
    [{ messages: [user], tools: [fn("no spaces")] }, "tools[0].function.name"],
    [{ messages: [user], tools: [fn("f"), fn("f")] }, "tools[1].function"],
    [
      { messages: [user], tools: [fn("f")], tool_choice: { type: "function", function: { name: "g" } } },
      "tool_choice",
    ],
    [
      { messages: [user, { role: "tool", tool_call_id: "call_1", content: "r" }] },
      "messages[1].tool_call_id",
    ],
    [
      {
        messages: [user],
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { enum: [] } } },
      },
      "response_format.json_schema.schema",
    ],
  ])("refuses %j naming %s", (body, param) => {
    expect(chatRequestProblem(body as Record<string, unknown>)?.param).toBe(param);
  });

  it("leaves n to a backend that answers n choices, when asked to", () => {
    expect(chatRequestProblem({ messages: [user], n: 3 }, { allowN: true })).toBeNull();
  });
});

describe("responsesRequestProblem", () => {
  it("refuses an output answering no call, a bad tool schema and a bad text format", () => {
    expect(
      responsesRequestProblem({ input: [{ type: "function_call_output", call_id: "c", output: "x" }] })
        ?.param,
    ).toBe("input[0].call_id");
    expect(
      responsesRequestProblem({
        input: "x",
        tools: [{ type: "function", name: "f", parameters: { type: "nope" } }],
      })?.param,
    ).toBe("tools[0].parameters");
    expect(
      responsesRequestProblem({
        input: "x",
        text: { format: { type: "json_schema", name: "x", schema: [] } },
      })?.param,
    ).toBe("text.format.schema");
    expect(
      responsesRequestProblem({
        input: [
          { type: "function_call", call_id: "c", name: "f", arguments: "{}" },
          { type: "function_call_output", call_id: "c", output: "x" },
        ],
      }),
    ).toBeNull();
  });
});
