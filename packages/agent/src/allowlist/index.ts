/** The job-type allowlist of the agent: protocol's job types with the agent's policies, and its registry. */
export {
  type AllowlistEntry,
  type AllowlistEntryDefinition,
  type AllowlistRegistry,
  type CreateAllowlistOptions,
  createAllowlist,
  type JobStep,
  type PolicyContext,
} from "./allowlist-registry.js";
export { jobTypes } from "./job-types.js";
