/**
 * JSON Schemas as the consumer sent them (response_format, tool parameters) → the subset that
 * node-llama-cpp turns into a GBNF grammar. node-llama-cpp compiles any object without error but
 * silently drops what it does not know (`pattern` becomes any string, `anyOf` becomes `null`, an
 * empty schema `{}` becomes `null`), so a grammar built from the raw schema would produce output
 * the schema rejects. This module rewrites what can be rewritten faithfully (`anyOf` → a union,
 * `definitions` → `$defs`, a bounded integer range → an enum, `{}` → any JSON value) and refuses
 * the rest with a 400 naming the param and the keyword, so a client never gets JSON that breaks
 * its own schema. Annotations (title, description, default, examples, format outside the dates
 * llama.cpp knows…) are kept or dropped: they constrain nothing.
 */
import { httpError } from "@gbt/protocol";
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";
import type { JsonSchema } from "./types.js";

/** Largest integer range rewritten into an enum (`minimum`/`maximum` the grammar cannot express). */
export const MAX_INTEGER_ENUM_RANGE = 256;

/** Validation keywords whose constraint the grammar cannot enforce: a schema using one is refused. */
const UNENFORCEABLE = new Set([
  "pattern",
  "patternProperties",
  "propertyNames",
  "dependentRequired",
  "dependentSchemas",
  "dependencies",
  "unevaluatedProperties",
  "unevaluatedItems",
  "contains",
  "minContains",
  "maxContains",
  "uniqueItems",
  "multipleOf",
  "not",
  "allOf",
  "if",
  "then",
  "else",
  "$dynamicRef",
  "$recursiveRef",
]);
const BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] as const;
const SCALAR_TYPES = new Set(["string", "number", "integer", "boolean", "null"]);
const DATE_FORMATS = new Set(["date-time", "time", "date"]);

type Node = Record<string, unknown>;

/** Any JSON value (node-llama-cpp reads a bare `{}` as `null`). */
const ANY_VALUE: Node = {
  oneOf: [
    { type: ["string", "number", "boolean", "null"] },
    { type: "object", additionalProperties: true },
    { type: "array" },
  ],
};

/** Thrown for a schema the grammar cannot enforce; `param` is the request field (e.g. `tools[0].function.parameters`). */
function unsupported(param: string, path: string, what: string) {
  const at = path === "" ? "" : ` at ${path}`;
  return httpError(
    "invalid_value",
    `${param}: ${what}${at} is not supported by the embedded backend's JSON-schema grammar; use enum, const, bounded strings (minLength/maxLength), integers, booleans, objects with properties, arrays (items, minItems/maxItems), oneOf/anyOf and $ref to #/$defs.`,
    { param },
  );
}

function isNode(value: unknown): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Rewrites `schema` into node-llama-cpp's grammar schema, or throws an HttpError 400
 * `invalid_value` naming `param` and the first unsupported keyword.
 */
export function toGrammarSchema(schema: unknown, param: string): GbnfJsonSchema {
  return convert(schema, param, "") as GbnfJsonSchema;
}

function convert(schema: unknown, param: string, path: string): Node {
  if (schema === true) return ANY_VALUE;
  if (!isNode(schema))
    throw unsupported(param, path, schema === false ? "the schema `false`" : "a non-object schema");
  // A date format's grammar is the pattern that schema generators (zod, pydantic) write beside it.
  const datePattern = typeof schema.format === "string" && DATE_FORMATS.has(schema.format);
  for (const keyword of Object.keys(schema)) {
    if (keyword === "pattern" && datePattern) continue;
    if (UNENFORCEABLE.has(keyword)) throw unsupported(param, path, `\`${keyword}\``);
  }
  const out: Node = {};
  if (typeof schema.description === "string") out.description = schema.description;
  const defs = schema.$defs ?? schema.definitions;
  if (defs !== undefined) {
    if (!isNode(defs)) throw unsupported(param, path, "`$defs` that is not an object");
    out.$defs = Object.fromEntries(
      Object.entries(defs).map(([name, def]) => [name, convert(def, param, `${path}/$defs/${name}`)]),
    );
  }

  if (schema.$ref !== undefined) {
    const ref = schema.$ref;
    const local = typeof ref === "string" ? /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(ref) : null;
    if (!local) throw unsupported(param, path, `\`$ref\` ${JSON.stringify(ref)} (only #/$defs/NAME)`);
    return { ...out, $ref: `#/$defs/${local[1]}` };
  }
  if (schema.const !== undefined) return { ...out, const: scalar(schema.const, param, `${path}/const`) };
  if (schema.enum !== undefined) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0)
      throw unsupported(param, path, "an `enum` that is not a non-empty array");
    return { ...out, enum: schema.enum.map((value, i) => scalar(value, param, `${path}/enum/${i}`)) };
  }
  const union = schema.oneOf ?? schema.anyOf;
  if (union !== undefined) {
    const keyword = schema.oneOf !== undefined ? "oneOf" : "anyOf";
    if (!Array.isArray(union) || union.length === 0)
      throw unsupported(param, path, `a \`${keyword}\` that is not a non-empty array`);
    return { ...out, oneOf: union.map((branch, i) => convert(branch, param, `${path}/${keyword}/${i}`)) };
  }

  let type = schema.type;
  if (type === undefined) {
    if (schema.properties !== undefined || schema.additionalProperties !== undefined) type = "object";
    else if (schema.items !== undefined || schema.prefixItems !== undefined) type = "array";
    else return { ...ANY_VALUE, ...out };
  }
  if (Array.isArray(type)) {
    if (type.length === 0) throw unsupported(param, path, "an empty `type` list");
    if (
      type.every((t) => typeof t === "string" && SCALAR_TYPES.has(t)) &&
      !hasBounds(schema) &&
      !hasStringRules(schema)
    )
      return { ...out, type };
    // Mixed kinds (e.g. ["object", "null"]): one branch per type, each with the keywords of its kind.
    return {
      ...out,
      oneOf: type.map((t, i) =>
        convert({ ...schema, type: t, $defs: undefined, definitions: undefined }, param, `${path}/type/${i}`),
      ),
    };
  }
  switch (type) {
    case "string":
      return { ...out, ...stringRules(schema, param, path) };
    case "integer":
      return { ...out, ...integerRules(schema, param, path) };
    case "number":
      if (hasBounds(schema)) throw unsupported(param, path, "`minimum`/`maximum` on a number");
      return { ...out, type: "number" };
    case "boolean":
    case "null":
      return { ...out, type };
    case "object":
      return { ...out, ...objectRules(schema, param, path) };
    case "array":
      return { ...out, ...arrayRules(schema, param, path) };
    default:
      throw unsupported(param, path, `the type ${JSON.stringify(type)}`);
  }
}

function scalar(value: unknown, param: string, path: string): string | number | boolean | null {
  if (value === null || ["string", "number", "boolean"].includes(typeof value))
    return value as string | number | boolean | null;
  throw unsupported(param, path, "a non-scalar const or enum value");
}

function hasBounds(schema: Node): boolean {
  return BOUNDS.some((keyword) => schema[keyword] !== undefined);
}

function hasStringRules(schema: Node): boolean {
  return schema.minLength !== undefined || schema.maxLength !== undefined;
}

function nonNegativeInteger(schema: Node, keyword: string, param: string, path: string): number | undefined {
  const value = schema[keyword];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0)
    throw unsupported(param, path, `\`${keyword}\` that is not a non-negative integer`);
  return value;
}

function stringRules(schema: Node, param: string, path: string): Node {
  const minLength = nonNegativeInteger(schema, "minLength", param, path);
  const maxLength = nonNegativeInteger(schema, "maxLength", param, path);
  const format =
    typeof schema.format === "string" && DATE_FORMATS.has(schema.format) ? schema.format : undefined;
  if (format !== undefined) {
    if (minLength !== undefined || maxLength !== undefined)
      throw unsupported(param, path, `\`minLength\`/\`maxLength\` with format ${format}`);
    return { type: "string", format };
  }
  return {
    type: "string",
    ...(minLength === undefined ? {} : { minLength }),
    ...(maxLength === undefined ? {} : { maxLength }),
  };
}

/** Integers with bounds become the enum of the values in range (the grammar has no numeric ranges). */
function integerRules(schema: Node, param: string, path: string): Node {
  if (!hasBounds(schema)) return { type: "integer" };
  const bound = (keyword: (typeof BOUNDS)[number]) => {
    const value = schema[keyword];
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value))
      throw unsupported(param, path, `\`${keyword}\` that is not a number`);
    return value;
  };
  const finite = (values: (number | undefined)[]) =>
    values.filter((value): value is number => value !== undefined && Number.isFinite(value));
  const lows = finite([bound("minimum"), (bound("exclusiveMinimum") ?? Number.NaN) + 1e-9]);
  const highs = finite([bound("maximum"), (bound("exclusiveMaximum") ?? Number.NaN) - 1e-9]);
  const low = lows.length > 0 ? Math.ceil(Math.max(...lows)) : undefined;
  const high = highs.length > 0 ? Math.floor(Math.min(...highs)) : undefined;
  if (low === undefined || high === undefined || high - low + 1 > MAX_INTEGER_ENUM_RANGE)
    throw unsupported(
      param,
      path,
      `an integer range other than a closed one of at most ${MAX_INTEGER_ENUM_RANGE} values`,
    );
  if (high < low) throw unsupported(param, path, "an empty integer range");
  return { enum: Array.from({ length: high - low + 1 }, (_, i) => low + i) };
}

function objectRules(schema: Node, param: string, path: string): Node {
  const out: Node = { type: "object" };
  if (schema.properties !== undefined) {
    if (!isNode(schema.properties)) throw unsupported(param, path, "`properties` that is not an object");
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([key, value]) => [
        key,
        convert(value, param, `${path}/properties/${key}`),
      ]),
    );
  }
  if (schema.required !== undefined) {
    if (!Array.isArray(schema.required) || !schema.required.every((key) => typeof key === "string"))
      throw unsupported(param, path, "`required` that is not a list of names");
    out.required = schema.required;
  }
  const additional = schema.additionalProperties;
  // Absent: JSON Schema allows extra keys; the grammar then generates only the listed ones, a valid subset.
  if (additional === true || additional === false) out.additionalProperties = additional;
  else if (additional !== undefined)
    out.additionalProperties = convert(additional, param, `${path}/additionalProperties`);
  else if (schema.properties === undefined) out.additionalProperties = true;
  const minProperties = nonNegativeInteger(schema, "minProperties", param, path);
  const maxProperties = nonNegativeInteger(schema, "maxProperties", param, path);
  if (minProperties !== undefined) out.minProperties = minProperties;
  if (maxProperties !== undefined) out.maxProperties = maxProperties;
  return out;
}

function arrayRules(schema: Node, param: string, path: string): Node {
  const out: Node = { type: "array" };
  const items = schema.items;
  if (Array.isArray(items)) {
    // Draft-7 tuple form.
    out.prefixItems = items.map((item, i) => convert(item, param, `${path}/items/${i}`));
    const extra = schema.additionalItems;
    if (extra === false) out.maxItems = items.length;
    else if (extra !== undefined && extra !== true)
      out.items = convert(extra, param, `${path}/additionalItems`);
  } else if (items !== undefined) {
    if (items === false) out.maxItems = 0;
    else out.items = convert(items, param, `${path}/items`);
  }
  if (schema.prefixItems !== undefined) {
    if (!Array.isArray(schema.prefixItems))
      throw unsupported(param, path, "`prefixItems` that is not a list");
    out.prefixItems = schema.prefixItems.map((item, i) => convert(item, param, `${path}/prefixItems/${i}`));
  }
  const minItems = nonNegativeInteger(schema, "minItems", param, path);
  const maxItems = nonNegativeInteger(schema, "maxItems", param, path);
  if (minItems !== undefined) out.minItems = minItems;
  if (maxItems !== undefined)
    out.maxItems = Math.min(maxItems, (out.maxItems as number | undefined) ?? maxItems);
  return out;
}

/**
 * The grammar of a JSON Schema: rewritten by {@link toGrammarSchema}, then compiled by
 * node-llama-cpp (whose own failures are the same 400 naming `param`).
 */
export async function compileSchemaGrammar(
  llama: Llama,
  schema: JsonSchema,
  param: string,
): Promise<LlamaGrammar> {
  const grammarSchema = toGrammarSchema(schema, param);
  try {
    return await llama.createGrammarForJsonSchema<GbnfJsonSchema>(grammarSchema);
  } catch (error) {
    throw httpError(
      "invalid_value",
      `${param}: node-llama-cpp could not compile the schema into a grammar: ${error instanceof Error ? error.message : String(error)}`,
      { param },
    );
  }
}
