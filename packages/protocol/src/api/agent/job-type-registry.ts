/**
 * A lookup of job types by name that parses a job's parameters under its type's strict schema and
 * gives each schema as JSON Schema. Issuers use it over the wire schemas alone (`jobTypeSchemas`);
 * the agent builds its allowlist on it with policies and executors attached to the same entries,
 * so a job the issuer accepted is judged by exactly the schema the node will apply.
 */
import { z } from "zod";
import { GbtError } from "../../errors.js";
import { jsonPath } from "../../model-manifest.js";
import { ALLOWLIST_VERSION, type JobTypeSchema, jobTypeSchemas } from "./job-types.js";

/** An entry of a registry: its definition and its parameters as JSON Schema. */
export type JobTypeEntry<E extends JobTypeSchema = JobTypeSchema> = E & {
  /** The parameters' JSON Schema (draft 2020-12), for issuers' tooling and docs. */
  jsonSchema(): Record<string, unknown>;
};

export interface JobTypeRegistry<E extends JobTypeSchema = JobTypeSchema> {
  readonly version: number;
  /** The entry of `type`, or undefined when it is not allowlisted. */
  get(type: string): JobTypeEntry<E> | undefined;
  /** The allowlisted types, in declaration order. */
  types(): string[];
  entries(): readonly JobTypeEntry<E>[];
  /** Parses `params` under `type`'s strict schema; throws UNKNOWN_JOB_TYPE or INVALID_PARAMS. */
  parseParams(type: string, params: unknown): unknown;
}

export interface CreateJobTypeRegistryOptions<E extends JobTypeSchema = JobTypeSchema> {
  /** Default: the job types of ALLOWLIST_VERSION. */
  entries?: readonly E[];
  version?: number;
}

/** Builds a registry of `entries` (default: this version's wire schemas); a type declared twice throws. */
export function createJobTypeRegistry<E extends JobTypeSchema = JobTypeSchema>(
  options: CreateJobTypeRegistryOptions<E> = {},
): JobTypeRegistry<E> {
  const version = options.version ?? ALLOWLIST_VERSION;
  const byType = new Map<string, JobTypeEntry<E>>();
  for (const definition of options.entries ?? (jobTypeSchemas as readonly JobTypeSchema[] as readonly E[])) {
    if (byType.has(definition.type)) throw new Error(`job type ${definition.type} is declared twice`);
    byType.set(definition.type, {
      ...definition,
      jsonSchema: () =>
        z.toJSONSchema(definition.params, { io: "input", unrepresentable: "any" }) as Record<string, unknown>,
    });
  }
  const entries = [...byType.values()];

  const get = (type: string) => byType.get(type);
  return {
    version,
    get,
    types: () => entries.map((entry) => entry.type),
    entries: () => entries,
    parseParams(type, params) {
      const entry = get(type);
      if (!entry) throw unknownJobType(type, entries);
      const parsed = entry.params.safeParse(params);
      if (!parsed.success) throw invalidParams(type, parsed.error);
      return parsed.data;
    },
  };
}

/** UNKNOWN_JOB_TYPE for a type that is not on the allowlist. */
export function unknownJobType(type: string, entries: readonly { type: string }[]): GbtError {
  return new GbtError("UNKNOWN_JOB_TYPE", `Job type "${type}" is not on this node's allowlist.`, {
    details: { type, allowed: entries.map((entry) => entry.type) },
    hint: "Use one of the allowed types; the node never runs anything else.",
  });
}

/** INVALID_PARAMS naming the JSON path of the first problem. */
function invalidParams(type: string, error: z.ZodError): GbtError {
  const issue = error.issues[0];
  const segments: PropertyKey[] = [...(issue?.path ?? [])];
  if (issue?.code === "unrecognized_keys" && issue.keys[0] !== undefined) segments.push(issue.keys[0]);
  const path = jsonPath(segments);
  return new GbtError(
    "INVALID_PARAMS",
    `Invalid parameters for ${type} at ${path}: ${issue?.message ?? "rejected"}.`,
    {
      details: {
        type,
        path,
        issues: error.issues.slice(0, 5).map((i) => ({ path: jsonPath(i.path), message: i.message })),
      },
      hint: "Fix the parameters to match the type's schema (`jsonSchema()` of its allowlist entry) and sign a new job.",
    },
  );
}
