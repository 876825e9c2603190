/** The job envelope: parsing a received body, verifying the signed job, and the replay store. */
export { parseJobBody } from "./parse-job-body.js";
export {
  ACCEPTED_STATE,
  type ClaimResult,
  createReplayStore,
  type JobClaim,
  type ReplayStore,
  type StoredJob,
} from "./replay-store.js";
export {
  MAX_JOB_LIFETIME_SECONDS,
  type VerifiedJob,
  type VerifyJobContext,
  verifyJobEnvelope,
} from "./verify-job.js";
