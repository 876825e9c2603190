/**
 * Checking a node's answer to a job: a JobResult is worth something only when it is signed by the
 * job's node, meant for its issuer, on its chain, and names exactly the envelope that was sent:
 * its EIP-712 digest (`jobHash`) and the hash of the whole envelope as received (`envelopeHash`:
 * signature and params included). A node-signed "rejected" result for a corrupted copy of a real
 * job (altered params, another signature) therefore names another envelope and does not verify
 * against the real one.
 */
import { hashPayload } from "../../canonical-json.js";
import { GbtError } from "../../errors.js";
import {
  digestOf,
  parseSignedObject,
  type RecoverSigner,
  type SignedObject,
  verifyObject,
} from "../../signed-object.js";
import type { JobOutcome } from "./job-outcome.js";

/**
 * The hash a JobResult binds the envelope with: keccak256 of the canonical JSON of the envelope
 * exactly as received (parsed from its text, nothing normalised), so any change to any field
 * (signature, params, a message field's spelling) gives another hash.
 */
export function jobEnvelopeHash(envelope: unknown): `0x${string}` {
  return hashPayload(envelope);
}

export interface VerifyJobResultOptions {
  /** The signed Job the result must answer, as it was sent (the parsed JSON of its exact text). */
  job: unknown;
  /** Clock in milliseconds. */
  now?: () => number;
  /** Accepted clock skew in seconds (default 30). */
  skewSeconds?: number;
  recoverSigner?: RecoverSigner;
}

/**
 * Verifies a JobResult received for `job`: shape, chain (the job's), audience (its issuer), payload
 * binding, signature and signer (its node), then that it answers this very envelope (jobId,
 * jobHash, envelopeHash); throws a GbtError naming the failed check.
 */
export async function verifyJobResult(
  value: unknown,
  options: VerifyJobResultOptions,
): Promise<SignedObject<"JobResult">> {
  const job = parseSignedObject(options.job, "Job");
  const signed = await verifyObject(value, {
    kind: "JobResult",
    chainId: job.domain.chainId,
    audience: job.message.issuer,
    allowedSigners: [job.message.node],
    ...(options.now ? { now: options.now } : {}),
    ...(options.skewSeconds !== undefined ? { skewSeconds: options.skewSeconds } : {}),
    ...(options.recoverSigner ? { recoverSigner: options.recoverSigner } : {}),
  });
  const expected = {
    jobId: job.message.jobId,
    jobHash: digestOf(job),
    envelopeHash: jobEnvelopeHash(options.job),
  };
  const actual = {
    jobId: signed.message.jobId,
    jobHash: signed.message.jobHash,
    envelopeHash: signed.message.envelopeHash,
  };
  const differs = (Object.keys(expected) as (keyof typeof expected)[]).find(
    (field) => expected[field].toLowerCase() !== actual[field].toLowerCase(),
  );
  if (differs !== undefined) {
    throw new GbtError(
      "INVALID_OBJECT",
      `The JobResult answers another job envelope (its ${differs} differs).`,
      {
        details: { field: differs, expected: expected[differs], actual: actual[differs] },
        hint: "The node signed an answer to a different copy of the job; treat the job's fate as unknown and ask the node (gbt job status).",
      },
    );
  }
  return signed;
}

/**
 * A job outcome once its JobResult, when it carries one, is proven to answer `job` (the envelope
 * as sent); a success must carry one, since only the node's signature makes its output the node's.
 * A refusal or failure without one is passed on as the unproven answer it is.
 */
export async function checkJobOutcome(
  outcome: JobOutcome,
  job: unknown,
  options: Omit<VerifyJobResultOptions, "job"> = {},
): Promise<JobOutcome> {
  if (outcome.result === undefined) {
    if (outcome.state !== "succeeded") return outcome;
    throw new GbtError(
      "INVALID_OBJECT",
      `Job ${outcome.jobId ?? "(unnamed)"} succeeded without a signed JobResult.`,
      {
        hint: "Only the node's signed JobResult proves the outcome; whoever answered (a relay?) dropped it.",
      },
    );
  }
  await verifyJobResult(outcome.result, { ...options, job });
  return outcome;
}

/** The envelope a job's text describes, as the node parses it; undefined when it is not JSON. */
export function sentEnvelope(job: string | object): unknown {
  try {
    return JSON.parse(typeof job === "string" ? job : JSON.stringify(job)) as unknown;
  } catch {
    return undefined;
  }
}
