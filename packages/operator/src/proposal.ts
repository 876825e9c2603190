/**
 * The gate between a planner and the admin: every proposal, whatever planner made it, is parsed
 * here with the agent's own allowlist schemas (createJobTypeRegistry().parseParams) and bound to this
 * node. What fails is dropped with the reason the admin sees; only a ProposedJob can be approved,
 * and only an approved one is ever signed.
 */
import { type ErrorCode, GbtError, isGbtError, type JobTypeRegistry, schemas } from "@gbt/protocol";
import { type Address, isAddressEqual } from "viem";
import { z } from "zod";

/** What a planner hands over for one job: not trusted, parsed below. */
export interface RawProposal {
  /** The job type (for LLM planners, resolved from the tool name). */
  type: string;
  params: unknown;
  why?: unknown;
  /** A node the planner addressed the job to; must be this node when present. */
  node?: unknown;
  /** The tool the model called, when it was an LLM: shown when the call is dropped. */
  tool?: string;
  /** Anything else the planner put next to the job: any key here drops the proposal. */
  extra?: Record<string, unknown>;
}

/** A job the admin may approve: valid params for an allowlisted type, for this node. */
export interface ProposedJob {
  /** Stable within a session: `p1`, `p2`, … */
  id: string;
  type: string;
  params: Record<string, unknown>;
  risk: "read" | "change";
  why: string;
  description: string;
  node: Address;
}

/** A proposal that will never be signed, with the reason the admin is shown. */
export interface DroppedProposal {
  type: string;
  tool?: string;
  params?: unknown;
  reason: { code: ErrorCode; message: string };
}

export interface ProposalContext {
  allowlist: JobTypeRegistry;
  /** The types the node's agent publishes; a type it does not publish is dropped. */
  agentTypes?: ReadonlySet<string>;
  node: Address;
}

const MAX_WHY = 300;
const why = schemas.boundedText(MAX_WHY);
const paramsObject = z.record(z.string(), z.unknown());

export type ValidatedProposal =
  | { ok: true; job: Omit<ProposedJob, "id"> }
  | { ok: false; dropped: DroppedProposal };

/** Validates one raw proposal; never throws. */
export function validateProposal(raw: RawProposal, context: ProposalContext): ValidatedProposal {
  const drop = (code: ErrorCode, message: string): ValidatedProposal => ({
    ok: false,
    dropped: {
      type: printable(raw.type),
      ...(raw.tool === undefined ? {} : { tool: printable(raw.tool) }),
      ...(raw.params === undefined ? {} : { params: raw.params }),
      reason: { code, message },
    },
  });
  const extraKeys = Object.keys(raw.extra ?? {});
  if (extraKeys.length > 0) {
    return drop(
      "INVALID_PARAMS",
      `unexpected field${extraKeys.length > 1 ? "s" : ""} ${extraKeys.map((k) => JSON.stringify(printable(k))).join(", ")} next to the job`,
    );
  }
  if (raw.node !== undefined) {
    const node = schemas.address.safeParse(raw.node);
    if (!node.success) return drop("INVALID_ADDRESS", "names a node that is not an address");
    if (!isAddressEqual(node.data as Address, context.node)) {
      return drop(
        "WRONG_AUDIENCE",
        `is addressed to another node (${node.data}); this Operator only signs for ${context.node}`,
      );
    }
  }
  const entry = context.allowlist.get(raw.type);
  if (!entry || (context.agentTypes && !context.agentTypes.has(raw.type))) {
    return drop("UNKNOWN_JOB_TYPE", `"${printable(raw.type)}" is not on this node's allowlist`);
  }
  const reason = raw.why === undefined ? { success: true as const, data: "" } : why.safeParse(raw.why);
  if (!reason.success) {
    return drop("INVALID_INPUT", `its explanation is not printable text of at most ${MAX_WHY} characters`);
  }
  const params = paramsObject.safeParse(raw.params ?? {});
  if (!params.success) return drop("INVALID_PARAMS", "its parameters are not an object");
  let parsed: unknown;
  try {
    parsed = context.allowlist.parseParams(raw.type, params.data);
  } catch (error) {
    if (isGbtError(error)) return drop(error.code, error.message);
    return drop("INVALID_PARAMS", String(error));
  }
  return {
    ok: true,
    job: {
      type: entry.type,
      params: parsed as Record<string, unknown>,
      risk: entry.risk,
      why: reason.data || entry.description,
      description: entry.description,
      node: context.node,
    },
  };
}

/** Re-checks an approved job right before signing: the same schemas, the same node. */
export function assertSignable(job: ProposedJob, context: ProposalContext): unknown {
  const checked = validateProposal(
    { type: job.type, params: job.params, why: job.why, node: job.node },
    context,
  );
  if (!checked.ok) {
    throw new GbtError(
      checked.dropped.reason.code,
      `Refusing to sign ${job.type}: ${checked.dropped.reason.message}.`,
    );
  }
  return checked.job.params;
}

/** Text safe to show in a terminal: control characters (escape sequences included) made visible, length bounded. */
export function printable(value: unknown, max = 120, options: { newlines?: boolean } = {}): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  let visible = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    const control = code < 0x20 || (code >= 0x7f && code <= 0x9f);
    visible += control && !(options.newlines && c === "\n") ? `\\u${code.toString(16).padStart(4, "0")}` : c;
  }
  return visible.length > max ? `${visible.slice(0, max - 1)}…` : visible;
}
