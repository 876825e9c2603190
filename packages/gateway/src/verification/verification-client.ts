/**
 * Client side of the verification routes, for the CLI: a node's standing as its gateway sees it
 * (`GET /v1/gateway/nodes/:id/trust`, public) and the evidence records (`GET /v1/gateway/evidence`,
 * admin token). Answers are parsed with zod: a gateway is another party.
 */
import { readFile } from "node:fs/promises";
import { GbtError } from "@gbt/protocol";
import { z } from "zod";
import { adminTokenPath } from "../gateway-identity.js";
import { trustTierSchema } from "./verification-config.js";

export const nodeTrustSchema = z.looseObject({
  id: z.string(),
  tier: trustTierSchema,
  reputation: z.number().min(0).max(1),
  reasons: z.array(z.string()),
  evidence: z.array(z.string()),
  fraud: z.number().int().min(0),
  benchmarked: z.boolean(),
  challenges: z.looseObject({
    passed: z.number().int().min(0),
    failed: z.number().int().min(0),
    errors: z.number().int().min(0),
    lastCanary: z.object({ outcome: z.string(), at: z.number() }).nullable(),
    lastBenchmark: z
      .object({ outcome: z.string(), at: z.number(), measuredTokPerSec: z.number().nullable() })
      .nullable(),
  }),
});
export type NodeTrust = z.infer<typeof nodeTrustSchema>;

export const evidenceRecordSchema = z.looseObject({
  id: z.string(),
  hash: z.string(),
  instanceId: z.string(),
  node: z.string(),
  kind: z.string(),
  severity: z.enum(["fraud", "quality"]),
  summary: z.string(),
  details: z.record(z.string(), z.unknown()),
  at: z.number(),
  slashingProposal: z
    .object({ id: z.number(), status: z.string(), evidenceHash: z.string(), createdAt: z.number() })
    .nullable(),
});
export type EvidenceListing = z.infer<typeof evidenceRecordSchema>;

export interface VerificationClientOptions {
  gatewayUrl: string;
  /** The admin token (evidence routes only). */
  adminToken?: string;
  fetch?: typeof globalThis.fetch;
  timeoutMs?: number;
}

async function getJson(options: VerificationClientOptions, path: string): Promise<unknown> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await fetchImpl(new URL(path, options.gatewayUrl), {
      headers: options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (cause) {
    throw new GbtError("GATEWAY_UNREACHABLE", `No gateway answers at ${options.gatewayUrl}.`, {
      hint: "Check the gateway URL (--gateway / --url, or gateway.url in the node config) and that it runs.",
      cause,
    });
  }
  const body = (await response.json().catch(() => null)) as {
    error?: { message?: unknown; code?: unknown };
  } | null;
  if (response.status === 401) {
    throw new GbtError("UNAUTHORIZED", "The gateway refused the admin token.", {
      hint: "Use that gateway's token: GBT_GATEWAY_ADMIN_TOKEN, or --data-dir of its state.",
    });
  }
  if (response.status === 404) {
    const message =
      typeof body?.error?.message === "string" ? body.error.message.slice(0, 300) : "Not found.";
    throw new GbtError("NOT_FOUND", message, {
      hint: "A node appears once it has registered (gbt serve --gateway URL); list evidence with `gbt gateway evidence list`.",
    });
  }
  if (!response.ok) {
    throw new GbtError("GATEWAY_UNREACHABLE", `The gateway answered HTTP ${response.status}.`, {
      details: { status: response.status, code: body?.error?.code ?? null },
    });
  }
  return body;
}

function parsed<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new GbtError("INVALID_OBJECT", `The gateway's ${what} is not in the expected shape.`, {
      details: { issues: result.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`) },
      hint: "Is the URL a gbt gateway of the same version?",
    });
  }
  return result.data;
}

/** A node's tier, reputation and evidence ids as the gateway sees them. */
export async function fetchNodeTrust(options: VerificationClientOptions, node: string): Promise<NodeTrust> {
  const body = await getJson(options, `/v1/gateway/nodes/${encodeURIComponent(node.toLowerCase())}/trust`);
  return parsed(nodeTrustSchema, body, "trust view");
}

/** Evidence records, newest first (admin token). */
export async function listEvidence(
  options: VerificationClientOptions,
  filter: { node?: string; limit?: number } = {},
): Promise<EvidenceListing[]> {
  const query = new URLSearchParams();
  if (filter.node) query.set("node", filter.node);
  if (filter.limit) query.set("limit", String(filter.limit));
  const body = await getJson(options, `/v1/gateway/evidence${query.size > 0 ? `?${query}` : ""}`);
  return parsed(z.object({ data: z.array(evidenceRecordSchema) }), body, "evidence list").data;
}

/** One evidence record with its slashing proposal (admin token). */
export async function getEvidence(options: VerificationClientOptions, id: string): Promise<EvidenceListing> {
  if (!/^ev_[0-9a-f]{16}$/.test(id)) {
    throw new GbtError("INVALID_INPUT", `"${id.slice(0, 40)}" is not an evidence id.`, {
      hint: "Evidence ids look like ev_0123456789abcdef (see `gbt gateway evidence list`).",
    });
  }
  return parsed(
    evidenceRecordSchema,
    await getJson(options, `/v1/gateway/evidence/${id}`),
    "evidence record",
  );
}

/**
 * The admin token for the CLI: `env.GBT_GATEWAY_ADMIN_TOKEN`, else the first readable
 * `<data dir>/admin-token` of `dataDirs` (a gateway's, then `gbt up`'s).
 */
export async function readGatewayAdminToken(
  dataDirs: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (env.GBT_GATEWAY_ADMIN_TOKEN) return env.GBT_GATEWAY_ADMIN_TOKEN;
  const paths = dataDirs.map(adminTokenPath);
  for (const path of paths) {
    try {
      const token = (await readFile(path, "utf8")).trim();
      if (token.length > 0) return token;
    } catch {
      // try the next place
    }
  }
  throw new GbtError("MISSING_INPUT", `No admin token at ${paths.join(" or ")}.`, {
    hint: "Set GBT_GATEWAY_ADMIN_TOKEN, or pass --data-dir of the gateway's state.",
  });
}
