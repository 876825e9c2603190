/**
 * Turning an issuer's command line into a job's parameters and a signed Job. `--param key=value`
 * values are typed by the job type's JSON Schema (so `lines=20` is a number), then the whole object
 * is parsed by the allowlist's strict schema before anything is signed: a job the node would reject
 * is never produced.
 */
import { randomUUID } from "node:crypto";
import type { AllowlistEntry, AllowlistRegistry } from "@gbt/agent";
import { GbtError, type SignedObject, signObject } from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";

/** Jobs are short-lived: long enough to reach a node, too short to be replayed later. */
export const DEFAULT_JOB_TTL_SECONDS = 300;
export const MAX_JOB_TTL_SECONDS = 600;

type JsonSchema = Record<string, unknown>;

function propertiesOf(schema: JsonSchema): Record<string, JsonSchema> {
  const properties = schema.properties;
  return properties && typeof properties === "object" ? (properties as Record<string, JsonSchema>) : {};
}

function requiredOf(schema: JsonSchema): string[] {
  return Array.isArray(schema.required) ? (schema.required as string[]) : [];
}

/** `model, reason?`: the parameter names of a schema, `?` marking the optional ones; `-` for none. */
export function summarizeParams(schema: JsonSchema): string {
  const required = new Set(requiredOf(schema));
  const names = Object.keys(propertiesOf(schema)).map((name) => (required.has(name) ? name : `${name}?`));
  return names.length > 0 ? names.join(", ") : "-";
}

/** The value of one `--param`, typed by its property's JSON Schema, else JSON when it parses, else text. */
function typedValue(raw: string, property: JsonSchema | undefined): unknown {
  const type = property?.type;
  if (type === "string") return raw;
  if ((type === "number" || type === "integer") && raw.trim() !== "" && Number.isFinite(Number(raw))) {
    return Number(raw);
  }
  if (type === "boolean" && (raw === "true" || raw === "false")) return raw === "true";
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

export interface BuildJobParamsOptions {
  /** The job type's parameters as JSON Schema. */
  schema: JsonSchema;
  /** `key=value` assignments, in order; a later one overrides an earlier one and --params-json. */
  assignments?: readonly string[];
  /** A JSON object of parameters, merged under the assignments. */
  paramsJson?: string;
}

/** Builds the raw parameter object from --params-json and --param (not yet validated). */
export function buildJobParams({
  schema,
  assignments = [],
  paramsJson,
}: BuildJobParamsOptions): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (paramsJson !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(paramsJson);
    } catch (cause) {
      throw new GbtError("INVALID_INPUT", `--params-json is not valid JSON: ${(cause as Error).message}.`, {
        hint: `Pass a JSON object, e.g. --params-json '{"lines": 20}'.`,
      });
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new GbtError("INVALID_INPUT", "--params-json must be a JSON object.", {
        hint: `Pass a JSON object, e.g. --params-json '{"lines": 20}'.`,
      });
    }
    params = { ...(parsed as Record<string, unknown>) };
  }
  const properties = propertiesOf(schema);
  for (const assignment of assignments) {
    const at = assignment.indexOf("=");
    if (at <= 0) {
      throw new GbtError("USAGE", `--param ${JSON.stringify(assignment)} is not of the form key=value.`, {
        hint: "Write each parameter as --param key=value.",
      });
    }
    const key = assignment.slice(0, at);
    params[key] = typedValue(assignment.slice(at + 1), properties[key]);
  }
  return params;
}

export interface CreateSignedJobOptions {
  allowlist: AllowlistRegistry;
  /** The issuer's key; its address becomes the Job's issuer. */
  account: LocalAccount;
  type: string;
  params: unknown;
  node: Address;
  chainId: number;
  ttlSeconds?: number;
  nonce?: number;
  now?: () => number;
  newJobId?: () => string;
}

/** The allowlist entry of `type`; UNKNOWN_JOB_TYPE, with the valid types in its hint, when there is none. */
export function jobTypeEntry(allowlist: AllowlistRegistry, type: string): AllowlistEntry {
  const entry = allowlist.get(type);
  if (entry) return entry;
  const types = allowlist.types();
  throw new GbtError("UNKNOWN_JOB_TYPE", `Job type "${type}" is not on the allowlist.`, {
    details: { type, allowed: types },
    hint: `Use one of: ${types.join(", ")} (see \`gbt agent allowlist\`).`,
  });
}

/** Validates `params` under the allowlist (UNKNOWN_JOB_TYPE / INVALID_PARAMS) and signs the Job. */
export async function createSignedJob({
  allowlist,
  account,
  type,
  params,
  node,
  chainId,
  ttlSeconds = DEFAULT_JOB_TTL_SECONDS,
  nonce,
  now = Date.now,
  newJobId = randomUUID,
}: CreateSignedJobOptions): Promise<SignedObject<"Job">> {
  jobTypeEntry(allowlist, type);
  const payload = allowlist.parseParams(type, params);
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_JOB_TTL_SECONDS) {
    throw new GbtError("USAGE", `--ttl must be between 1 and ${MAX_JOB_TTL_SECONDS} seconds.`, {
      details: { ttlSeconds },
    });
  }
  const nowMs = now();
  const notBefore = Math.floor(nowMs / 1000);
  return signObject(account, {
    kind: "Job",
    chainId,
    message: {
      jobId: newJobId(),
      node,
      issuer: account.address,
      type,
      nonce: nonce ?? nowMs,
      notBefore,
      expiresAt: notBefore + ttlSeconds,
      allowlistVersion: allowlist.version,
    },
    payload,
  });
}
