/**
 * Facts the Operator explains from, each with where it came from: a status.read job's signed
 * result from the node's agent, or the gateway's admin view of this node. Answers quote the
 * source next to the fact; the Operator never states anything about the node from elsewhere.
 */

import type { EarningsPeriod, JobOutcome, VerifiedEarningsView } from "@gbt/protocol";
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

/** Micro-credits as credits, six decimals. */
const credits = (micro: number) =>
  `${Math.floor(micro / 1_000_000)}.${String(micro % 1_000_000).padStart(6, "0")}`;
/** Wei as GBT, trailing zeros dropped. */
const gbt = (wei: string) => {
  const value = BigInt(wei);
  const fraction = (value % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${value / 10n ** 18n}${fraction ? `.${fraction}` : ""} GBT`;
};
const pct = (factor: number) => `${Math.round(factor * 100)}%`;

function periodLine(label: string, p: EarningsPeriod): string {
  const held = p.heldMicro > 0 ? ` (plus ${credits(p.heldMicro)} held: receipts missing or mismatched)` : "";
  return `${label}: earned ${credits(p.earnedMicro)} credits${held} from ${p.requests} requests (${p.promptTokens} prompt + ${p.completionTokens} completion tokens)`;
}

/** Facts from the gateway's signed earnings view of this node (verified by the caller). */
export function earningsFacts(read: { url: string; view: VerifiedEarningsView }, now: number): Fact {
  const { payload, message } = read.view;
  const source = `gateway ${read.url} earnings view (GET /v1/nodes/:node/earnings, signed by the gateway ${message.gateway})`;
  const { periods } = payload;
  const lines = [
    periodLine("this week (last 7 days)", periods.week),
    periodLine("today (UTC)", periods.today),
    periodLine("this settlement epoch", periods.epoch),
    periodLine("all time", periods.allTime),
  ];
  const m = periods.week.multipliers;
  if (m) {
    lines.push(
      `multipliers this week: provider share ${pct(m.providerShare)}, ramp-up ${pct(m.rampFactor)}, switch penalty ${pct(m.switchPenalty)}, bounty ×${m.bounty}, reputation ${pct(m.reputation)}`,
    );
  }
  const settlement = payload.settlement;
  if (settlement) {
    lines.push(
      settlement.latestRoot
        ? `settlement: ${gbt(settlement.latestRoot.cumulativeWei)} in the latest posted root (epoch ${settlement.latestRoot.epoch}); ${gbt(settlement.unpostedWei)} not in a root yet`
        : `settlement: no root posted yet; ${gbt(settlement.unpostedWei)} earned so far`,
    );
    lines.push("what is claimable now is the chain's to say: `gbt node earnings` or `gbt payout status`");
  } else {
    lines.push("this gateway does not settle on chain");
  }
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
