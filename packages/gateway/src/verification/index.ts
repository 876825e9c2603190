/** Verification and reputation: challenges, evidence, trust tiers (see verification-extension.ts). */
export { askNode, type DecodeMeasurement, measureDecode, type NodeAnswer } from "./challenge-client.js";
export {
  type ChallengeKind,
  type ChallengeOutcome,
  type ChallengeRecord,
  type EvidenceKind,
  type EvidenceRecord,
  type EvidenceSeverity,
  EvidenceStore,
  fraudKinds,
  migrateVerification,
  verificationMigrations,
} from "./evidence-store.js";
export { type TrustInput, type TrustView, trustOf } from "./trust-score.js";
export {
  type EvidenceListing,
  evidenceRecordSchema,
  fetchNodeTrust,
  getEvidence,
  listEvidence,
  type NodeTrust,
  nodeTrustSchema,
  readGatewayAdminToken,
  type VerificationClientOptions,
} from "./verification-client.js";
export {
  type Canary,
  canarySchema,
  type TrustTier,
  tierRank,
  trustTierSchema,
  trustTiers,
  type VerificationConfig,
  verificationConfigSchema,
} from "./verification-config.js";
export {
  type ChallengeResult,
  createVerificationExtension,
  type SampleComparison,
  type VerificationExtension,
  type VerificationExtensionOptions,
} from "./verification-extension.js";
