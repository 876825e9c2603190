/**
 * The job types a node accepts: the wire schemas of protocol's allowlist (name, risk, description,
 * strict parameters) with the policies the agent applies on top, where a valid request can still
 * be harmful. Executors (preflight, execute, verify, rollback) are attached elsewhere; this file
 * only says what may be asked and what is refused even when well-formed.
 */
import { GbtError, type JobTypeSchema, jobTypeSchemas, type ownerParams } from "@gbt/protocol";
import { isAddressEqual } from "viem";
import type { z } from "zod";
import type { AllowlistEntryDefinition, PolicyContext } from "./allowlist-registry.js";

type Policy = (params: unknown, ctx: PolicyContext) => void;

/** The policies by job type. */
const policies: Record<string, Policy> = {
  // Which sources a node accepts is its owner's choice (checked on the node, see checkPullSource);
  // what no signed job may do anywhere is fetch unverifiable bytes: a bare URL needs its sha256,
  // and never over plain http.
  "model.pull": (params) => {
    const { model, sha256 } = params as { model: string; sha256?: string };
    if (/^http:\/\//i.test(model)) {
      throw new GbtError("POLICY_DENIED", "model.pull refuses plain-http URLs.", {
        details: { model },
        hint: "Use an https:// URL, a registry reference NAME@VERSION, or hf:OWNER/REPO/FILE.gguf.",
      });
    }
    if (/^https:\/\//i.test(model) && sha256 === undefined) {
      throw new GbtError("POLICY_DENIED", "model.pull of a bare URL needs the file's sha256.", {
        details: { model },
        hint: "Add sha256 (64 hex characters) to the job's parameters, or publish the model to the registry.",
      });
    }
  },
  "owner.remove": (params, ctx) => {
    const { address } = params as z.infer<typeof ownerParams>;
    if (!ctx.owners.some((owner) => isAddressEqual(owner, address))) {
      throw new GbtError("POLICY_DENIED", `${address} is not an owner of this node.`, {
        details: { address },
        hint: "List the node's owners and name one of them.",
      });
    }
    if (ctx.owners.length <= 1) {
      throw new GbtError("POLICY_DENIED", "Refusing to remove the node's last owner.", {
        details: { address },
        hint: "Add another owner first (owner.add), then remove this one.",
      });
    }
  },
};

/** Every job type of this allowlist version, in order, with its policy where it has one. */
export const jobTypes = withPolicies(jobTypeSchemas);

/** The schemas with their policies attached; the tuple type is kept, so `jobTypes[0]` is an entry. */
function withPolicies<const T extends readonly JobTypeSchema[]>(
  schemas: T,
): { readonly [K in keyof T]: T[K] & AllowlistEntryDefinition } {
  return schemas.map((schema) => {
    const policy = policies[schema.type];
    return policy ? { ...schema, policy } : schema;
  }) as unknown as { readonly [K in keyof T]: T[K] & AllowlistEntryDefinition };
}
