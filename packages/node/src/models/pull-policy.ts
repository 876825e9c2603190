/**
 * The owner's pull policy for signed model.pull jobs: by default the node's gateway registry, the
 * Hugging Face hub, the generated test models and (on Ollama) Ollama's library; bare URLs only
 * when the owner's config says `agent.pullPolicy.allowUrls: true`, and redirects to other hosts
 * only to those it lists. The CLI (`gbt model pull`, run by the owner) uses no such limit.
 */
import { z } from "zod";
import type { PullPolicy } from "./pull-model.js";

/** `agent.pullPolicy` in the node's config. */
export const pullPolicyConfigSchema = z.strictObject({
  allowUrls: z.boolean().default(false),
  allowedHosts: z
    .array(
      z
        .string()
        .max(255)
        .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "must be a host or host:port"),
    )
    .max(64)
    .default([]),
});
export type PullPolicyConfig = z.infer<typeof pullPolicyConfigSchema>;

/** The policy a signed job pulls under, from the owner's config (absent: the defaults). */
export function agentPullPolicy(config: Partial<PullPolicyConfig> = {}): PullPolicy {
  const parsed = pullPolicyConfigSchema.parse(config);
  return {
    sources: ["registry", "hf", "test", "ollama", ...(parsed.allowUrls ? (["url"] as const) : [])],
    allowedHosts: parsed.allowedHosts,
  };
}

/** `agent.pullPolicy` of a config document that may not know the key yet (absent or invalid: undefined). */
export function pullPolicyOf(config: unknown): Partial<PullPolicyConfig> | undefined {
  const agent = (config as { agent?: { pullPolicy?: unknown } } | null)?.agent;
  const parsed = pullPolicyConfigSchema.safeParse(agent?.pullPolicy);
  return parsed.success ? parsed.data : undefined;
}
