/**
 * Whether a value a consumer sent as a JSON Schema (tool parameters, a json_schema response format)
 * is one: the keywords gbt's backends act on must have their schema types, and the whole is bounded
 * in depth and size, so that a malformed or hostile schema is a 400 naming what is wrong, before a
 * backend builds a grammar from it. Keywords it does not know are left alone (JSON Schema allows
 * them); it does not decide whether a backend can enforce every keyword: the backend says so.
 */

const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
const MAX_DEPTH = 32;
const MAX_NODES = 10_000;

/** Keywords whose value is one schema. */
const ONE_SCHEMA = [
  "items",
  "additionalProperties",
  "not",
  "contains",
  "propertyNames",
  "if",
  "then",
  "else",
];
/** Keywords whose value is a non-empty list of schemas. */
const SCHEMA_LISTS = ["anyOf", "oneOf", "allOf", "prefixItems"];
/** Keywords whose value is a map of schemas. */
const SCHEMA_MAPS = ["properties", "$defs", "definitions", "patternProperties"];
const NON_NEGATIVE_INTEGERS = [
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
];
const NUMBERS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** null when `schema` is a usable schema, else what is wrong and where (a JSON pointer). */
export function jsonSchemaProblem(schema: unknown): string | null {
  let nodes = 0;
  function check(node: unknown, at: string, depth: number): string | null {
    if (typeof node === "boolean") return null;
    if (!isObject(node)) return `${at || "the schema"} must be an object`;
    if (depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
    if (++nodes > MAX_NODES) return `more than ${MAX_NODES} subschemas`;
    const type = node.type;
    if (type !== undefined) {
      const types = Array.isArray(type) ? type : [type];
      if (types.length === 0 || !types.every((t) => typeof t === "string" && TYPES.has(t))) {
        return `${at}/type must be one of ${[...TYPES].join(", ")} (or a list of them)`;
      }
    }
    if (node.required !== undefined) {
      if (!Array.isArray(node.required) || !node.required.every((r) => typeof r === "string")) {
        return `${at}/required must be a list of property names`;
      }
    }
    if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0)) {
      return `${at}/enum must be a non-empty list`;
    }
    if (node.pattern !== undefined) {
      if (typeof node.pattern !== "string") return `${at}/pattern must be a string`;
      try {
        new RegExp(node.pattern, "u");
      } catch {
        return `${at}/pattern is not a valid regular expression`;
      }
    }
    for (const key of NON_NEGATIVE_INTEGERS) {
      const value = node[key];
      if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 0)) {
        return `${at}/${key} must be a non-negative integer`;
      }
    }
    for (const key of NUMBERS) {
      const value = node[key];
      if (value !== undefined && !(typeof value === "number" && Number.isFinite(value))) {
        return `${at}/${key} must be a number`;
      }
    }
    for (const key of ONE_SCHEMA) {
      if (node[key] === undefined) continue;
      // Draft-4 tuples: `items` may be a list of schemas.
      if (key === "items" && Array.isArray(node.items)) {
        for (const [i, item] of node.items.entries()) {
          const problem = check(item, `${at}/items/${i}`, depth + 1);
          if (problem) return problem;
        }
        continue;
      }
      const problem = check(node[key], `${at}/${key}`, depth + 1);
      if (problem) return problem;
    }
    for (const key of SCHEMA_LISTS) {
      const list = node[key];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0)
        return `${at}/${key} must be a non-empty list of schemas`;
      for (const [i, item] of list.entries()) {
        const problem = check(item, `${at}/${key}/${i}`, depth + 1);
        if (problem) return problem;
      }
    }
    for (const key of SCHEMA_MAPS) {
      const map = node[key];
      if (map === undefined) continue;
      if (!isObject(map)) return `${at}/${key} must be an object of schemas`;
      for (const [name, item] of Object.entries(map)) {
        const problem = check(item, `${at}/${key}/${name}`, depth + 1);
        if (problem) return problem;
      }
    }
    return null;
  }
  return check(schema, "", 0);
}
