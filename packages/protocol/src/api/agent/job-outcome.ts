/**
 * What the agent answers about a job: the outcome document of `POST /agent/jobs` and
 * `GET /agent/jobs/:id` (running with the states passed so far, or final with the node-signed
 * JobResult), the HTTP status each outcome is answered with, and the GbtError of an outcome that
 * did not succeed, so that a script's exit code says why.
 */
import { z } from "zod";
import { type ErrorCode, errorCodes, GbtError } from "../../errors.js";

/**
 * The outcome document; its keys in the order the agent writes them, so that a parsed outcome
 * prints exactly as the node sent it.
 */
export const jobOutcomeSchema = z.object({
  /** Absent when the body was too broken to name a job. */
  jobId: z.string().max(200).optional(),
  /** `running`, or a final state (`succeeded`, `failed`, `rolled_back`, `rejected`). */
  state: z.string().min(1).max(32),
  /** The GbtError code of a rejection or failure. */
  code: z.string().max(64).optional(),
  message: z.string().max(4000).optional(),
  /** The states passed, for executed jobs. */
  states: z.array(z.string().max(32)).max(20).optional(),
  /** While running: the latest progress its executor reported (a pull's bytes). */
  progress: z
    .object({
      phase: z.string().min(1).max(32),
      bytes: z.number().int().min(0).optional(),
      totalBytes: z.number().int().min(0).nullable().optional(),
    })
    .optional(),
  /** What the job returned, for succeeded jobs. */
  output: z.unknown().optional(),
  /** The signed JobResult; absent only when the body did not parse as a Job. */
  result: z.unknown().optional(),
});
export type JobOutcome = z.infer<typeof jobOutcomeSchema>;

/** States after which a job never changes again. */
export const FINAL_JOB_STATES: ReadonlySet<string> = new Set([
  "succeeded",
  "failed",
  "rolled_back",
  "rejected",
]);

/** Rejection codes about who signed the job or when: answered 401, the rest of rejections 400. */
const AUTH_REJECTIONS: ReadonlySet<string> = new Set([
  "SIGNATURE_INVALID",
  "UNKNOWN_SIGNER",
  "WRONG_AUDIENCE",
  "WRONG_CHAIN",
  "EXPIRED",
  "NOT_YET_VALID",
  "REPLAYED",
  "STALE_NONCE",
  "PAYLOAD_HASH_MISMATCH",
]);

/** The HTTP status of an agent outcome: executed jobs are 200 whatever their end, rejections 4xx. */
export function agentOutcomeStatus(outcome: { state: string; code?: string }): number {
  if (outcome.state !== "rejected") return 200;
  return outcome.code !== undefined && AUTH_REJECTIONS.has(outcome.code) ? 401 : 400;
}

/** The GbtError of an outcome that did not succeed (INTERNAL for a code this version does not know). */
export function jobOutcomeError(outcome: JobOutcome): GbtError {
  const code: ErrorCode =
    outcome.code !== undefined && Object.hasOwn(errorCodes, outcome.code)
      ? (outcome.code as ErrorCode)
      : "INTERNAL";
  return new GbtError(
    code,
    `Job ${outcome.jobId ?? "(unnamed)"} ${outcome.state}: ${outcome.message ?? code}`,
    {
      details: { outcome },
    },
  );
}
