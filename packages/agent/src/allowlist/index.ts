/** The job-type allowlist of the agent: registry, job types and safe parameter strings. */
export {
  type AllowlistDescription,
  type AllowlistEntry,
  type AllowlistEntryDefinition,
  type AllowlistRegistry,
  type CreateAllowlistOptions,
  createAllowlist,
  describeAllowlist,
  type JobStep,
  type PolicyContext,
  unknownJobType,
} from "./allowlist-registry.js";
export { ALLOWLIST_VERSION, type ConfigKey, configSettings, jobTypes } from "./job-types.js";
export { MAX_MODEL_NAME_LENGTH, modelName, unsafeIdentifierReason } from "./safe-strings.js";
