/**
 * The `verification` section of gateway.json: which canaries the gateway knows the answers to,
 * how often it challenges nodes, how much real traffic it replays, and how trust decays. Every
 * field has a default, so a gateway without the section still measures and labels its nodes.
 */
import { z } from "zod";
import { trustTierSchema } from "../trust-tier.js";

/**
 * A prompt whose answer the gateway knows in advance: greedy (temperature 0), seeded, from a
 * known model. `digest` pins the model build the answer belongs to: a node that claims that digest
 * and answers otherwise serves something else than it claims.
 */
export const canarySchema = z.strictObject({
  model: z.string().min(1).max(256),
  digest: z.string().min(1).max(160).optional(),
  prompt: z.string().min(1).max(4000),
  seed: z.number().int().min(0).max(0xffffffff),
  maxTokens: z.number().int().min(1).max(256),
  /** The exact completion text (choices[0].message.content). */
  expected: z.string().max(64 * 1024),
});
export type Canary = z.infer<typeof canarySchema>;

export const verificationConfigSchema = z
  .strictObject({
    /** Run the background challenges (canaries, throughput); on-demand challenges work either way. */
    enabled: z.boolean().default(true),
    /** How often each instance gets a canary (ms). */
    canaryIntervalMs: z.number().int().min(1000).max(86_400_000).default(600_000),
    /** How often each instance's throughput is re-measured (ms). */
    benchmarkIntervalMs: z
      .number()
      .int()
      .min(1000)
      .max(7 * 86_400_000)
      .default(3_600_000),
    /** Share of real non-streamed, seeded requests replayed on a second node and compared. */
    sampleRate: z.number().min(0).max(1).default(0.02),
    /** A node whose time per output token is this much over its signed benchmark's (0.2 = 20%) is flagged. */
    benchmarkDriftLimit: z.number().min(0.01).max(1).default(0.2),
    /** Added to the allowed time per output token (ms): timer and scheduling noise on fast models. */
    tpotAllowanceMs: z.number().min(0).max(1000).default(0.05),
    /** Measurement pairs per throughput challenge round (the best one counts). */
    benchmarkRuns: z.number().int().min(1).max(9).default(3),
    /** Completion tokens of the long answer of a measurement pair (the short one has an eighth). */
    benchmarkTokens: z.number().int().min(8).max(1024).default(256),
    /** A challenge request that takes longer than this is an error (neutral), not a verdict. */
    challengeTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
    /** Half-life of challenge outcomes in the reputation (days). */
    reputationHalfLifeDays: z.number().min(0.01).max(365).default(7),
    /** Window of evidence and challenge history (days): the same 14 days as the health window. */
    windowDays: z.number().min(1).max(365).default(14),
    /** `verified` needs a passed canary at most this old (hours). */
    verifiedTtlHours: z
      .number()
      .min(0.01)
      .max(24 * 365)
      .default(24),
    canaries: z.array(canarySchema).max(1000).default([]),
    /** Minimum tier per consumer account id (the `x-gbt-min-tier` header can only raise it). */
    minTierByAccount: z.record(z.string().min(1).max(64), trustTierSchema).default({}),
  })
  .prefault({});
export type VerificationConfig = z.infer<typeof verificationConfigSchema>;
