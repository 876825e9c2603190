/**
 * The replay store: every job this node accepted, keyed by job id, and each issuer's highest nonce,
 * in the agent database. A claim is one SQLite transaction, so a job id is accepted at most once
 * and a nonce never goes back, even across restarts. Only jobs that passed every other check are
 * claimed: a rejected job is never "seen".
 */
import { GbtError } from "@gbt/protocol";
import type { Address, Hex } from "viem";
import type { AgentDatabase } from "../agent-database.js";

/** What is recorded of a job when it is claimed. */
export interface JobClaim {
  jobId: string;
  issuer: Address;
  nonce: number;
  /** EIP-712 digest of the signed job: the same id with another digest is a replay. */
  digest: Hex;
  type: string;
}

/** A job as stored, with its state and (once finished) its result. */
export interface StoredJob extends JobClaim {
  receivedAt: number;
  state: string;
  result: unknown;
}

export type ClaimResult = { duplicate: false } | { duplicate: true; stored: StoredJob };

/** State of a job that was claimed and not yet carried out. */
export const ACCEPTED_STATE = "accepted";

export interface ReplayStore {
  /**
   * Records `job` as seen. The same id with the same digest is a duplicate delivery (the caller
   * answers with the stored result); the same id with another digest throws REPLAYED; a nonce not
   * above the issuer's last throws STALE_NONCE.
   */
  claim(job: JobClaim): ClaimResult;
  /** The stored job with this id, if any. */
  get(jobId: string): StoredJob | undefined;
  /** The issuer's highest accepted nonce, if it ever had a job accepted. */
  lastNonce(issuer: Address): number | undefined;
  /** Records a claimed job's final state and result. */
  finish(jobId: string, state: string, result: unknown): void;
}

interface SeenJobRow {
  job_id: string;
  issuer: string;
  nonce: number;
  digest: string;
  type: string;
  received_at: number;
  state: string;
  result_json: string | null;
}

/** A replay store on the agent database; `now` is the clock in milliseconds. */
export function createReplayStore(db: AgentDatabase, now: () => number = Date.now): ReplayStore {
  const selectJob = db.prepare<[string], SeenJobRow>("SELECT * FROM seen_jobs WHERE job_id = ?");
  const selectNonce = db.prepare<[string], { last_nonce: number }>(
    "SELECT last_nonce FROM issuer_nonces WHERE issuer = ?",
  );
  const insertJob = db.prepare(
    `INSERT INTO seen_jobs (job_id, issuer, nonce, digest, type, received_at, state)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const upsertNonce = db.prepare(
    `INSERT INTO issuer_nonces (issuer, last_nonce) VALUES (?, ?)
     ON CONFLICT(issuer) DO UPDATE SET last_nonce = excluded.last_nonce`,
  );
  const updateResult = db.prepare("UPDATE seen_jobs SET state = ?, result_json = ? WHERE job_id = ?");

  const claim = db.transaction((job: JobClaim): ClaimResult => {
    const existing = selectJob.get(job.jobId);
    if (existing) {
      if (existing.digest === job.digest) return { duplicate: true, stored: fromRow(existing) };
      throw new GbtError("REPLAYED", `Job ${job.jobId} was already received with other contents.`, {
        details: { jobId: job.jobId },
        hint: "Give every new job a new job id (a fresh UUID); resend a job only byte for byte.",
      });
    }
    const last = selectNonce.get(job.issuer)?.last_nonce;
    if (last !== undefined && job.nonce <= last) {
      throw new GbtError(
        "STALE_NONCE",
        `Nonce ${job.nonce} is not above ${job.issuer}'s last nonce ${last}.`,
        {
          details: { issuer: job.issuer, nonce: job.nonce, lastNonce: last },
          hint: `Sign the job again with a nonce above ${last}.`,
        },
      );
    }
    insertJob.run(job.jobId, job.issuer, job.nonce, job.digest, job.type, now(), ACCEPTED_STATE);
    upsertNonce.run(job.issuer, job.nonce);
    return { duplicate: false };
  });

  return {
    claim: (job) => claim.immediate(job),
    get(jobId) {
      const row = selectJob.get(jobId);
      return row ? fromRow(row) : undefined;
    },
    lastNonce: (issuer) => selectNonce.get(issuer)?.last_nonce,
    finish(jobId, state, result) {
      const changed = updateResult.run(state, JSON.stringify(result ?? null), jobId).changes;
      if (changed === 0) {
        throw new GbtError("NOT_FOUND", `Job ${jobId} was never claimed.`, { details: { jobId } });
      }
    },
  };
}

function fromRow(row: SeenJobRow): StoredJob {
  return {
    jobId: row.job_id,
    issuer: row.issuer as Address,
    nonce: row.nonce,
    digest: row.digest as Hex,
    type: row.type,
    receivedAt: row.received_at,
    state: row.state,
    result: row.result_json === null ? null : JSON.parse(row.result_json),
  };
}
