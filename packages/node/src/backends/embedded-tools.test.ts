import { HttpError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { ForcedCallStream, forcedCallSchema, resolveToolMode } from "./embedded-tools.js";
import type { ChatStreamEvent, ToolDefinition } from "./types.js";

const tools: ToolDefinition[] = [
  { name: "a", parameters: { type: "object", properties: { x: { type: "string" } } } },
  { name: "b" },
];

describe("resolveToolMode", () => {
  it("runs text without tools or with none, a forced call for required or a name, auto otherwise", () => {
    expect(resolveToolMode({})).toEqual({ kind: "text", tools: [] });
    expect(resolveToolMode({ tools, toolChoice: "none" })).toEqual({ kind: "text", tools });
    expect(resolveToolMode({ tools })).toEqual({ kind: "auto", tools });
    expect(resolveToolMode({ tools, toolChoice: "required" })).toEqual({ kind: "forced", tools });
    expect(resolveToolMode({ tools, toolChoice: { name: "b" } })).toEqual({
      kind: "forced",
      tools: [tools[1]],
    });
  });

  it("refuses required without tools and an unknown name, as tool_choice", () => {
    for (const request of [{ toolChoice: "required" as const }, { tools, toolChoice: { name: "c" } }]) {
      let caught: unknown;
      try {
        resolveToolMode(request);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(HttpError);
      expect(caught).toMatchObject({ wireCode: "invalid_value", param: "tool_choice" });
    }
  });
});

describe("forcedCallSchema", () => {
  it("is a union of {name: const, arguments: parameters}, name first; absent parameters are any object", () => {
    expect(forcedCallSchema({ tools }, tools)).toEqual({
      oneOf: [
        {
          type: "object",
          properties: {
            name: { const: "a" },
            arguments: { type: "object", properties: { x: { type: "string" } } },
          },
          required: ["name", "arguments"],
          additionalProperties: false,
        },
        {
          type: "object",
          properties: { name: { const: "b" }, arguments: { type: "object", additionalProperties: true } },
          required: ["name", "arguments"],
          additionalProperties: false,
        },
      ],
    });
    expect(
      Object.keys(
        (forcedCallSchema({ tools }, [tools[0] as ToolDefinition]) as { properties: object }).properties,
      ),
    ).toEqual(["name", "arguments"]);
  });
});

describe("ForcedCallStream", () => {
  const json =
    '{\n  "name": "get_weather",\n  "arguments": {"q": "} { \\" ]", "list": [1, {"z": [2]}], "e": {}}\n}';

  function feed(pieces: string[]) {
    const call = new ForcedCallStream(0);
    const events: ChatStreamEvent[] = pieces.flatMap((piece) => call.push(piece));
    return { call, events };
  }

  it("announces the call once its name is read, then streams exactly the arguments object", () => {
    for (const pieces of [[...json], [json], json.match(/.{1,5}/gs) ?? []]) {
      const { call, events } = feed(pieces);
      expect(events[0]).toEqual({
        type: "tool_call",
        index: 0,
        id: call.id,
        name: "get_weather",
        arguments: "",
      });
      const fragments = events.slice(1);
      for (const event of fragments)
        expect(Object.keys(event).sort()).toEqual(["arguments", "index", "type"]);
      const args = fragments.map((event) => (event.type === "tool_call" ? event.arguments : "")).join("");
      expect(JSON.parse(args)).toEqual({ q: '} { " ]', list: [1, { z: [2] }], e: {} });
      expect(call.arguments).toBe(args);
      expect(call.complete).toBe(true);
    }
  });

  it("is incomplete while the JSON is cut, and gives ids of the call_ form", () => {
    const { call, events } = feed([json.slice(0, 40)]);
    expect(call.complete).toBe(false);
    expect(events[0]).toMatchObject({ name: "get_weather" });
    expect(call.id).toMatch(/^call_[A-Za-z0-9_-]{16}$/);
    expect(new ForcedCallStream().id).not.toBe(call.id);
  });

  it("says nothing before the name is complete", () => {
    expect(feed(['{"name": "get_we']).events).toEqual([]);
  });
});
