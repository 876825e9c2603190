/**
 * The allowlist as an agent publishes it (`GET /agent/allowlist`, `gbt agent allowlist --json`):
 * its version, the node and chain its jobs must be bound to, who may sign them (the node publishes
 * the same owners to its gateway, whose relay carries only their jobs), and each job type with its
 * risk, description and parameters as JSON Schema, for tools that build jobs.
 */
import { z } from "zod";
import { MAX_PUBLISHED_OWNERS } from "../../gateway-link.js";
import type { JobTypeRegistry } from "./job-type-registry.js";

export const publishedAllowlistSchema = z.object({
  version: z.number().int().min(0),
  /** The node behind the agent and its chain (agents of older versions do not say). */
  node: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/)
    .optional(),
  chainId: z.number().int().positive().optional(),
  /** The addresses allowed to sign its jobs (agents of older versions do not say). */
  owners: z
    .array(z.string().regex(/^0x[0-9a-fA-F]{40}$/))
    .max(MAX_PUBLISHED_OWNERS)
    .optional(),
  types: z
    .array(
      z.object({
        type: z.string().min(1).max(64),
        risk: z.enum(["read", "change"]),
        description: z.string().max(500),
        /** JSON Schema (draft 2020-12) of the type's parameters. */
        paramsSchema: z.record(z.string(), z.unknown()),
      }),
    )
    .max(100),
});
export type PublishedAllowlist = z.infer<typeof publishedAllowlistSchema>;

/** A registry's version and types, before the agent adds its node, chain and owners. */
export type AllowlistDescription = Omit<PublishedAllowlist, "node" | "chainId" | "owners">;

/** Describes a registry's types with their parameter schemas as JSON Schema. */
export function describeAllowlist(registry: JobTypeRegistry): AllowlistDescription {
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
