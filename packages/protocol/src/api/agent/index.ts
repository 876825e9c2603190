/**
 * The agent API: its paths, the job outcome and allowlist it answers with, the allowlist's job
 * types with their parameter schemas, and its typed client.
 */
export {
  type AllowlistDescription,
  describeAllowlist,
  type PublishedAllowlist,
  publishedAllowlistSchema,
} from "./allowlist.js";
export * from "./client/index.js";
export {
  agentOutcomeStatus,
  FINAL_JOB_STATES,
  type JobOutcome,
  jobOutcomeError,
  jobOutcomeSchema,
} from "./job-outcome.js";
export {
  checkJobOutcome,
  jobEnvelopeHash,
  sentEnvelope,
  type VerifyJobResultOptions,
  verifyJobResult,
} from "./job-result.js";
export {
  type CreateJobTypeRegistryOptions,
  createJobTypeRegistry,
  type JobTypeEntry,
  type JobTypeRegistry,
  unknownJobType,
} from "./job-type-registry.js";
export {
  ALLOWLIST_VERSION,
  type ConfigKey,
  configSettings,
  type JobTypeSchema,
  jobTypeSchemas,
  ownerParams,
} from "./job-types.js";
export { agentPaths, MAX_JOB_BODY_BYTES, MAX_JOB_ID_LENGTH } from "./paths.js";
export { MAX_MODEL_NAME_LENGTH, modelName, operatorNote, unsafeIdentifierReason } from "./safe-strings.js";
