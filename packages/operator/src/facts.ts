/**
 * Facts the Operator explains from, each with where it came from: a status.read job's signed
 * result from the node's agent, or the gateway's admin view of this node. Answers quote the
 * source next to the fact; the Operator never states anything about the node from elsewhere.
 */

import type { JobOutcome } from "@gbt/protocol";
import { z } from "zod";
import type { GatewayNodeView } from "./gateway-view.js";
import { printable } from "./proposal.js";

export interface Fact {
  /** Where the lines came from, e.g. `status.read job 3f0c… (signed by node 0x…)`. */
  source: string;
  /** Milliseconds since the epoch when it was read. */
  at: number;
  lines: string[];
}

const statusOutputSchema = z.object({
  address: z.string().max(64).optional(),
  mode: z.string().max(32).optional(),
  chainId: z.number().optional(),
  server: z
    .object({
      url: z.string().max(500).optional(),
      inFlight: z.number().optional(),
      draining: z.boolean().optional(),
    })
    .optional(),
  backend: z
    .object({
      kind: z.string().max(32).optional(),
      location: z.string().max(500).optional(),
      model: z.string().max(200).optional(),
      health: z
        .object({
          ok: z.boolean(),
          version: z.string().max(200).optional(),
          detail: z.string().max(500).optional(),
        })
        .optional(),
      models: z
        .array(z.object({ id: z.string().max(200) }))
        .max(200)
        .optional(),
    })
    .optional(),
  hardware: z
    .object({
      cpu: z
        .object({ brand: z.string().max(200).optional(), cores: z.number().optional() })
        .partial()
        .optional(),
      memory: z.object({ totalBytes: z.number().optional() }).partial().optional(),
      gpus: z
        .array(z.object({ model: z.string().max(200).optional() }).partial())
        .max(32)
        .optional(),
    })
    .partial()
    .optional(),
});
export type StatusOutput = z.infer<typeof statusOutputSchema>;

/** The node's mode as status.read reported it, when it did. */
export function modeFromStatus(output: unknown): string | undefined {
  const parsed = statusOutputSchema.safeParse(output);
  return parsed.success ? parsed.data.mode : undefined;
}

/** Facts from a succeeded status.read. */
export function statusFacts(outcome: JobOutcome, now: number): Fact {
  const source = `status.read job ${shortId(outcome.jobId)} (result signed by the node)`;
  const parsed = statusOutputSchema.safeParse(outcome.output);
  if (!parsed.success) return { source, at: now, lines: ["the status did not have the expected shape"] };
  const s = parsed.data;
  const lines: string[] = [];
  if (s.backend) {
    const health = s.backend.health;
    lines.push(
      `backend ${printable(s.backend.kind ?? "?", 32)}${s.backend.location ? ` at ${printable(s.backend.location, 60)}` : ""}: ${health ? (health.ok ? "healthy" : `unhealthy${health.detail ? ` (${printable(health.detail, 80)})` : ""}`) : "health unknown"}`,
    );
    const models = s.backend.models?.map((m) => printable(m.id, 60)) ?? [];
    lines.push(`models: ${models.length > 0 ? models.join(", ") : "none"}`);
  }
  if (s.server) {
    lines.push(
      `server: ${s.server.draining ? "draining (not taking new requests)" : "taking requests"}, ${s.server.inFlight ?? 0} in flight`,
    );
  }
  if (s.mode)
    lines.push(`mode: ${printable(s.mode, 32)}${s.chainId !== undefined ? `, chain ${s.chainId}` : ""}`);
  return { source, at: now, lines };
}

/** Facts from the gateway's view of this node. */
export function gatewayFacts(view: { url: string; instances: GatewayNodeView[] }, now: number): Fact {
  const source = `gateway ${view.url} (GET /v1/gateway/nodes)`;
  if (view.instances.length === 0) {
    return { source, at: now, lines: ["this node is not registered with the gateway (no heartbeats seen)"] };
  }
  const lines = view.instances.map((instance) => {
    const parked =
      instance.breaker === "closed"
        ? "not parked"
        : `parked: breaker ${printable(instance.breaker, 32)}${instance.probing ? " (probing)" : ""}`;
    const cooldown =
      instance.cooldownUntil !== null && instance.cooldownUntil !== undefined && instance.cooldownUntil > now
        ? `, cooling down after a 429 for ${Math.ceil((instance.cooldownUntil - now) / 1000)} s`
        : "";
    const floor = instance.belowFloor ? ", below the 5 tok/s floor" : "";
    return `${printable(instance.status, 32)}, ${parked}${cooldown}${floor}; ramp-up ${Math.round(instance.rampFactor * 100)}%, health score ${instance.healthScore.toFixed(2)}, ${instance.eligible ? "eligible for traffic" : "not eligible for traffic"}`;
  });
  return { source, at: now, lines };
}

/** `3f0c6a8e…` */
export function shortId(id: string | undefined): string {
  return id === undefined ? "(unnamed)" : `${id.slice(0, 8)}…`;
}

/** Facts as prompt or transcript text, each line tagged with its source. */
export function renderFacts(facts: readonly Fact[]): string {
  return facts
    .map(
      (fact) =>
        `From ${fact.source} at ${new Date(fact.at).toISOString()}:\n${fact.lines.map((l) => `  - ${l}`).join("\n")}`,
    )
    .join("\n");
}
