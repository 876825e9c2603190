/**
 * Parses a request's body, query or path parameters with a zod schema at the HTTP boundary; a
 * problem becomes a 400 `invalid_value` (`INVALID_INPUT`) whose message the route words.
 */
import { GbtError } from "@gbt/protocol";
import type { z } from "zod";

/** The first problem zod found: where (dotted path, empty for the whole value) and what. */
export interface InputProblem {
  path: string;
  message: string;
}

export function parseInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  describe: (problem: InputProblem) => string,
  hint?: string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const message = describe({ path: issue?.path.join(".") ?? "", message: issue?.message ?? "invalid" });
  throw new GbtError("INVALID_INPUT", message, hint !== undefined ? { hint } : {});
}

/** How a query string's problem reads: "Query limit: Too big…." */
export const queryProblem = ({ path, message }: InputProblem): string =>
  `Query ${path || "string"}: ${message}.`;
