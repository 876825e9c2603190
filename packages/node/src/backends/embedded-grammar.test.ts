import { describe, expect, it } from "vitest";
import { z } from "zod";
import { MAX_INTEGER_ENUM_RANGE, toGrammarSchema } from "./embedded-grammar.js";

const PARAM = "response_format.json_schema.schema";

function refusal(schema: unknown): { message: string; param: string } {
  try {
    toGrammarSchema(schema, PARAM);
  } catch (error) {
    return error as { message: string; param: string };
  }
  throw new Error("expected a refusal");
}

describe("toGrammarSchema", () => {
  it("keeps what the grammar enforces and drops annotations", () => {
    const schema = z.toJSONSchema(
      z.object({
        mood: z.enum(["a", "b"]).describe("how"),
        title: z.string().min(1).max(5),
        ok: z.boolean(),
        list: z.array(z.string()).max(3),
        when: z.iso.date(),
      }),
    );
    expect(toGrammarSchema({ ...schema, title: "Answer", examples: [{}] }, PARAM)).toEqual({
      type: "object",
      properties: {
        mood: { description: "how", enum: ["a", "b"] },
        title: { type: "string", minLength: 1, maxLength: 5 },
        ok: { type: "boolean" },
        list: { type: "array", items: { type: "string" }, maxItems: 3 },
        // A date format stands for the pattern zod writes beside it.
        when: { type: "string", format: "date" },
      },
      required: ["mood", "title", "ok", "list", "when"],
      additionalProperties: false,
    });
  });

  it("rewrites anyOf to a union, definitions to $defs, {} to any value, and type lists of kinds to branches", () => {
    expect(toGrammarSchema({ anyOf: [{ type: "string" }, { type: "null" }] }, PARAM)).toEqual({
      oneOf: [{ type: "string" }, { type: "null" }],
    });
    expect(toGrammarSchema({ $ref: "#/definitions/x", definitions: { x: { const: 1 } } }, PARAM)).toEqual({
      $defs: { x: { const: 1 } },
      $ref: "#/$defs/x",
    });
    expect(toGrammarSchema({}, PARAM)).toMatchObject({ oneOf: expect.any(Array) });
    expect(toGrammarSchema({ type: ["string", "null"] }, PARAM)).toEqual({ type: ["string", "null"] });
    expect(
      toGrammarSchema({ type: ["object", "null"], properties: { a: { type: "integer" } } }, PARAM),
    ).toEqual({
      oneOf: [{ type: "object", properties: { a: { type: "integer" } } }, { type: "null" }],
    });
  });

  it("turns a bounded integer range into its enum, exclusive bounds included", () => {
    expect(toGrammarSchema({ type: "integer", minimum: 1, maximum: 4 }, PARAM)).toEqual({
      enum: [1, 2, 3, 4],
    });
    expect(toGrammarSchema({ type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 3 }, PARAM)).toEqual({
      enum: [1, 2],
    });
    expect(refusal({ type: "integer", minimum: 0 }).message).toMatch(/closed one/);
    expect(refusal({ type: "integer", minimum: 0, maximum: MAX_INTEGER_ENUM_RANGE }).message).toMatch(
      /closed one/,
    );
  });

  it("refuses what it cannot enforce, naming the param, the keyword and where", () => {
    const cases: [unknown, RegExp][] = [
      [{ type: "string", pattern: "^a$" }, /`pattern`/],
      [{ type: "object", properties: { a: { allOf: [] } } }, /`allOf` at \/properties\/a/],
      [{ type: "number", maximum: 1 }, /minimum/],
      [{ $ref: "other.json#/x" }, /\$ref/],
      [{ type: "array", uniqueItems: true }, /uniqueItems/],
      [{ type: "wat" }, /type "wat"/],
      [false, /`false`/],
      [{ not: {} }, /`not`/],
    ];
    for (const [schema, message] of cases) {
      const error = refusal(schema);
      expect(error.param).toBe(PARAM);
      expect(error.message).toMatch(message);
      expect(error.message.startsWith(`${PARAM}:`)).toBe(true);
    }
  });
});
