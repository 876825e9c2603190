/**
 * The agent's run loop for one received job: parse, verify, claim, lock the job's resource, then
 * received → verified → preflight → running → succeeded | failed | rolled_back. A change that fails
 * after it started is rolled back. Every final state is one audit entry and one JobResult signed by
 * the node key, bound to the exact envelope received; a duplicate delivery answers with the stored
 * outcome without running anything again.
 *
 * A rejected job is never executed, and what the node does with it depends on who sent it, so
 * that nobody but an owner can write to the audit log at will or obtain the node's signature:
 * - an envelope whose signature does not recover to the issuer it names (garbage, forgeries, a
 *   non-canonical twin) is answered with its error only: not audited, not signed;
 * - a validly signed job from someone who is not an owner is answered the same way, and audited
 *   at most STRANGER_AUDITS_PER_HOUR times per clock hour (then only logged);
 * - an owner's rejected job is audited and answered with a signed JobResult, as every outcome.
 */
import {
  authenticatedSigner,
  describeAllowlist,
  digestOf,
  type ErrorCode,
  GbtError,
  type Job,
  jobEnvelopeHash,
  kinds,
  type PublishedAllowlist,
  recoverSignerNative,
  type SignedObject,
} from "@gbt/protocol";
import { type Address, type Hex, isAddressEqual, type LocalAccount } from "viem";
import type { AgentDatabase } from "../agent-database.js";
import type { AllowlistEntry, AllowlistRegistry } from "../allowlist/allowlist-registry.js";
import type { AuditLog, AuditState } from "../audit/audit-log.js";
import { type SignedJobResult, signJobResult } from "../audit/job-result.js";
import { parseJobBody } from "../envelope/parse-job-body.js";
import { createReplayStore } from "../envelope/replay-store.js";
import { type VerifiedJob, verifyJobEnvelope } from "../envelope/verify-job.js";
import type { JobHandlers, JobProgress } from "./handlers.js";
import type { ExecutionContext, ExecutorStep } from "./job-executors.js";
import { createResourceLocks } from "./resource-locks.js";

/** Rejections of validly signed jobs from non-owners audited per clock hour; the rest are only logged. */
export const STRANGER_AUDITS_PER_HOUR = 10;

/** The ids a JobResult names its job by. */
interface AnsweredJob {
  jobId: string;
  issuer: Address;
  type: string;
  digest: Hex;
  envelopeHash: Hex;
}

/** The states a job passes through, in order; the last one is final. */
export type ExecutionState =
  | "received"
  | "verified"
  | "preflight"
  | "running"
  | "succeeded"
  | "failed"
  | "rolled_back";

/** What the agent answers a submitted job with. */
export interface AgentOutcome {
  /** Absent when the body was too broken to name a job. */
  jobId?: string;
  state: AuditState | "running";
  /** The GbtError code of a rejection or failure. */
  code?: ErrorCode;
  message?: string;
  /** The states passed, for executed jobs. */
  states?: ExecutionState[];
  /** While running: the latest progress its executor reported (a pull's bytes). */
  progress?: JobProgress;
  /** What execute returned, for succeeded jobs. */
  output?: unknown;
  /** The signed answer; absent for a rejection of anyone but an owner (an unproven signature included). */
  result?: SignedJobResult;
}

/** The subset of a pino logger the agent writes to. */
export interface AgentLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
}

export interface CreateAgentDependencies {
  db: AgentDatabase;
  auditLog: AuditLog;
  /** The node key: it is the audience of every job and signs every JobResult. */
  account: LocalAccount;
  chainId: number;
  /** The addresses allowed to sign jobs, read at each submission. */
  owners: () => readonly Address[];
  /** The allowlist with executors attached (`createExecutableAllowlist`). */
  allowlist: AllowlistRegistry;
  handlers: JobHandlers;
  /** Clock in milliseconds. */
  now?: () => number;
  logger?: AgentLogger;
}

export interface Agent {
  /** Runs a received job (raw body or parsed JSON) to its final state; never throws a GbtError. */
  submit(body: unknown): Promise<AgentOutcome>;
  /** The outcome of a job: running, finished (stored), or null when this node never accepted it. */
  status(jobId: string): AgentOutcome | null;
  /** The job types this agent accepts, with the node and chain its jobs must be bound to and its owners now. */
  allowlist(): PublishedAllowlist;
}

interface Failure {
  state: "failed" | "rolled_back";
  code: ErrorCode;
  message: string;
  detail: Record<string, unknown>;
}

/** Creates the agent of one node. */
export function createAgent(deps: CreateAgentDependencies): Agent {
  const now = deps.now ?? Date.now;
  const replay = createReplayStore(deps.db, now);
  const withLock = createResourceLocks();
  const inFlight = new Map<
    string,
    { states: ExecutionState[]; done: Promise<AgentOutcome>; progress?: JobProgress }
  >();
  // Who the agent is, with what it accepts: a client binds its jobs to this node and chain.
  const published: PublishedAllowlist = {
    ...describeAllowlist(deps.allowlist),
    node: deps.account.address,
    chainId: deps.chainId,
  };

  // The stranger audits of the current clock hour.
  const strangerAudits = { hour: -1, count: 0 };
  function mayAuditStranger(): boolean {
    const hour = Math.floor(now() / 3_600_000);
    if (hour !== strangerAudits.hour) Object.assign(strangerAudits, { hour, count: 0 });
    return strangerAudits.count++ < STRANGER_AUDITS_PER_HOUR;
  }

  async function finalize(
    job: AnsweredJob,
    state: AuditState,
    payload: Record<string, unknown>,
    audit: { code?: ErrorCode; detail: Record<string, unknown> },
  ): Promise<SignedJobResult> {
    const entry = deps.auditLog.append({
      jobId: job.jobId,
      type: job.type,
      issuer: job.issuer,
      state,
      code: audit.code,
      detail: audit.detail,
      result: payload,
    });
    return signJobResult(deps.account, {
      chainId: deps.chainId,
      job: {
        jobId: job.jobId,
        node: deps.account.address,
        issuer: job.issuer,
        digest: job.digest,
        envelopeHash: job.envelopeHash,
      },
      state,
      result: payload,
      auditHash: entry.hash,
      now,
    });
  }

  async function reject(value: unknown, error: GbtError): Promise<AgentOutcome> {
    const errorJson = { code: error.code, message: error.message, details: error.details ?? {} };
    const unsigned: AgentOutcome = { state: "rejected", code: error.code, message: error.message };
    // Who sent it, when the signature proves it (whatever else is wrong with the job).
    const signer = await authenticatedSigner(value, { kind: "Job", recoverSigner: recoverSignerNative });
    const claimed = signer === null ? undefined : claimedJob(value);
    if (!claimed) {
      deps.logger?.warn({ code: error.code }, `unauthenticated job refused: ${error.message}`);
      return unsigned;
    }
    deps.logger?.warn(
      { jobId: claimed.jobId, issuer: claimed.issuer, code: error.code },
      `job rejected: ${error.message}`,
    );
    if (!deps.owners().some((owner) => isAddressEqual(owner, claimed.issuer))) {
      if (mayAuditStranger()) {
        deps.auditLog.append({
          jobId: claimed.jobId,
          type: claimed.type,
          issuer: claimed.issuer,
          state: "rejected",
          code: error.code,
          detail: { error: errorJson, owner: false },
        });
      }
      return { jobId: claimed.jobId, ...unsigned };
    }
    const result = await finalize(
      claimed,
      "rejected",
      { error: { code: error.code, message: error.message } },
      { code: error.code, detail: { error: errorJson } },
    );
    return { jobId: claimed.jobId, ...unsigned, result };
  }

  async function execute(
    verified: VerifiedJob,
    envelopeHash: Hex,
    states: ExecutionState[],
  ): Promise<AgentOutcome> {
    const { job, params, entry } = verified;
    const ids = {
      jobId: job.jobId,
      issuer: job.issuer,
      type: job.type,
      digest: verified.digest,
      envelopeHash,
    };
    const ctx: ExecutionContext = {
      handlers: deps.handlers,
      owners: deps.owners(),
      memo: {},
      progress: (progress) => {
        const running = inFlight.get(job.jobId);
        if (running) running.progress = progress;
      },
    };
    const steps = stepsOf(entry);
    const outcome = await withLock(steps.resource(params), async () => {
      states.push("preflight");
      if (!steps.execute) {
        return failure(
          "failed",
          "PREFLIGHT_FAILED",
          `Job type ${job.type} is not executable on this node yet.`,
        );
      }
      try {
        await steps.preflight?.(params, ctx);
      } catch (error) {
        return failure("failed", "PREFLIGHT_FAILED", `Preflight of ${job.type} failed: ${messageOf(error)}`, {
          error: errorJson(error),
        });
      }
      states.push("running");
      try {
        const output = await steps.execute(params, ctx);
        await steps.verify?.(params, ctx);
        return { output };
      } catch (error) {
        if (entry.risk !== "change") {
          return failure("failed", codeOf(error), messageOf(error), { error: errorJson(error) });
        }
        try {
          await steps.rollback?.(params, ctx);
        } catch (rollbackError) {
          return failure(
            "failed",
            codeOf(error),
            `${messageOf(error)}; rollback failed too: ${messageOf(rollbackError)}`,
            { error: errorJson(error), rollbackError: errorJson(rollbackError) },
          );
        }
        return failure("rolled_back", codeOf(error), `${messageOf(error)} (rolled back)`, {
          error: errorJson(error),
        });
      }
    });

    let answer: AgentOutcome;
    if ("output" in outcome) {
      states.push("succeeded");
      const payload = { output: outcome.output ?? null };
      const result = await finalize(ids, "succeeded", payload, { detail: { states, params } });
      answer = { jobId: job.jobId, state: "succeeded", states, output: payload.output, result };
    } else {
      states.push(outcome.state);
      const payload = { error: { code: outcome.code, message: outcome.message } };
      const result = await finalize(ids, outcome.state, payload, {
        code: outcome.code,
        detail: { states, params, ...outcome.detail },
      });
      answer = {
        jobId: job.jobId,
        state: outcome.state,
        code: outcome.code,
        message: outcome.message,
        states,
        result,
      };
    }
    replay.finish(job.jobId, answer.state, answer);
    deps.logger?.info({ jobId: job.jobId, type: job.type, state: answer.state }, `job ${answer.state}`);
    return answer;
  }

  function stored(jobId: string): AgentOutcome | null {
    const job = replay.get(jobId);
    if (!job || job.result === null || typeof job.result !== "object") return null;
    // Written by this module (`finish` above) from an AgentOutcome; the database is the agent's own.
    return job.result as AgentOutcome;
  }

  return {
    async submit(body) {
      let value: unknown;
      let verified: VerifiedJob;
      try {
        value = Buffer.isBuffer(body) ? parseJobBody(body) : body;
        verified = await verifyJobEnvelope(value, {
          node: deps.account.address,
          chainId: deps.chainId,
          owners: deps.owners(),
          allowlist: deps.allowlist,
          replay,
          now,
        });
      } catch (error) {
        if (error instanceof GbtError) return reject(value, error);
        throw error;
      }
      const { jobId } = verified.job;
      if (verified.duplicate) {
        const running = inFlight.get(jobId);
        if (running) return running.done;
        return (
          stored(jobId) ?? {
            jobId,
            state: "failed",
            code: "INTERRUPTED",
            message: `Job ${jobId} was accepted but interrupted before it finished; its outcome is unknown.`,
          }
        );
      }
      const states: ExecutionState[] = ["received", "verified"];
      // Past verification the envelope is a well-formed Job, whose canonical JSON always hashes.
      const done = execute(verified, jobEnvelopeHash(value), states).finally(() => inFlight.delete(jobId));
      inFlight.set(jobId, { states, done });
      return done;
    },
    status(jobId) {
      const running = inFlight.get(jobId);
      if (running) {
        return {
          jobId,
          state: "running",
          states: [...running.states],
          ...(running.progress ? { progress: { ...running.progress } } : {}),
        };
      }
      return stored(jobId);
    },
    allowlist: () => ({ ...published, owners: [...deps.owners()] }),
  };
}

type Steps = {
  resource: (params: unknown) => string;
  preflight?: ExecutorStep<unknown>;
  execute?: ExecutorStep<unknown>;
  verify?: ExecutorStep<unknown>;
  rollback?: ExecutorStep<unknown>;
};

/** An entry's steps as executors define them (JobStep leaves their signature to the executor). */
function stepsOf(entry: AllowlistEntry): Steps {
  const resource = (entry as { resource?: unknown }).resource;
  return {
    resource: typeof resource === "function" ? (resource as Steps["resource"]) : () => entry.type,
    ...(entry.preflight ? { preflight: entry.preflight as Steps["preflight"] } : {}),
    ...(entry.execute ? { execute: entry.execute as Steps["execute"] } : {}),
    ...(entry.verify ? { verify: entry.verify as Steps["verify"] } : {}),
    ...(entry.rollback ? { rollback: entry.rollback as Steps["rollback"] } : {}),
  };
}

function failure(
  state: Failure["state"],
  code: ErrorCode,
  message: string,
  detail: Record<string, unknown> = {},
): Failure {
  return { state, code, message, detail };
}

function codeOf(error: unknown): ErrorCode {
  return error instanceof GbtError ? error.code : "INTERNAL";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorJson(error: unknown): Record<string, unknown> {
  return error instanceof GbtError
    ? { code: error.code, message: error.message, details: error.details ?? {} }
    : { code: "INTERNAL", message: messageOf(error) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The job a rejected body claims to be, when its message is a well-formed Job (to answer it signed). */
function claimedJob(value: unknown): AnsweredJob | undefined {
  if (!isRecord(value) || value.kind !== "Job") return undefined;
  const parsed = kinds.Job.message.safeParse(value.message);
  if (!parsed.success) return undefined;
  const job: Job = parsed.data;
  try {
    const digest = digestOf({ ...value, kind: "Job", message: job } as SignedObject<"Job">);
    return {
      jobId: job.jobId,
      issuer: job.issuer,
      type: job.type,
      digest,
      envelopeHash: jobEnvelopeHash(value),
    };
  } catch {
    return undefined;
  }
}
