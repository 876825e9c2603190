/**
 * The allowlist: the only job types this agent will consider, each with a strict parameter schema,
 * an optional policy, and (attached later) the steps that carry it out. A job names the allowlist
 * version it was written against, so an issuer and a node that disagree on what a type means fail
 * loudly instead of running something else.
 */
import { GbtError } from "@gbt/protocol";
import type { Address } from "viem";
import { z } from "zod";
import { ALLOWLIST_VERSION, jobTypes } from "./job-types.js";

/** What a policy may look at besides the parameters. */
export interface PolicyContext {
  /** The node's owners at the time of the check. */
  owners: readonly Address[];
  /** Clock in milliseconds. */
  now: number;
}

/** A step of carrying out a job; its context is defined by the executor that supplies it. */
export type JobStep = (params: never, ctx: never) => unknown;

/** One allowlisted job type, as declared. */
export interface AllowlistEntryDefinition {
  type: string;
  /** `read` types never change the node; `change` types do and need executors with rollback. */
  risk: "read" | "change";
  /** Strict schema of the job's parameters (the signed payload). */
  params: z.ZodType;
  description: string;
  /** Throws GbtError("POLICY_DENIED") when valid parameters must still not run here. */
  policy?: (params: unknown, ctx: PolicyContext) => void;
  preflight?: JobStep;
  execute?: JobStep;
  verify?: JobStep;
  rollback?: JobStep;
}

/** An entry of the registry: its definition and its parameters as JSON Schema. */
export interface AllowlistEntry extends AllowlistEntryDefinition {
  /** The parameters' JSON Schema (draft 2020-12), for issuers' tooling and docs. */
  jsonSchema(): Record<string, unknown>;
}

export interface AllowlistRegistry {
  readonly version: number;
  /** The entry of `type`, or undefined when it is not allowlisted. */
  get(type: string): AllowlistEntry | undefined;
  /** The allowlisted types, in declaration order. */
  types(): string[];
  entries(): readonly AllowlistEntry[];
  /** Parses `params` under `type`'s strict schema; throws UNKNOWN_JOB_TYPE or INVALID_PARAMS. */
  parseParams(type: string, params: unknown): unknown;
}

export interface CreateAllowlistOptions {
  /** Default: the job types of ALLOWLIST_VERSION. */
  entries?: readonly AllowlistEntryDefinition[];
  version?: number;
}

/** Builds the registry; executors are attached by passing entries that carry them. */
export function createAllowlist(options: CreateAllowlistOptions = {}): AllowlistRegistry {
  const version = options.version ?? ALLOWLIST_VERSION;
  const byType = new Map<string, AllowlistEntry>();
  for (const definition of options.entries ?? jobTypes) {
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
export function unknownJobType(type: string, entries: readonly AllowlistEntry[]): GbtError {
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

function jsonPath(segments: readonly PropertyKey[]): string {
  let path = "$";
  for (const segment of segments) {
    if (typeof segment === "number") path += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) path += `.${segment}`;
    else path += `[${JSON.stringify(String(segment))}]`;
  }
  return path;
}

/** The allowlist as published to tools (`gbt agent allowlist --json`, `GET /agent/allowlist`). */
export interface AllowlistDescription {
  version: number;
  types: {
    type: string;
    risk: "read" | "change";
    description: string;
    /** JSON Schema (draft 2020-12) of the type's parameters. */
    paramsSchema: Record<string, unknown>;
  }[];
}

/** Describes a registry's types with their parameter schemas as JSON Schema. */
export function describeAllowlist(registry: AllowlistRegistry): AllowlistDescription {
  return {
    version: registry.version,
    types: registry.entries().map((entry) => ({
      type: entry.type,
      risk: entry.risk,
      description: entry.description,
      paramsSchema: entry.jsonSchema(),
    })),
  };
}
