/** The agent's audit log and the signed results it answers jobs with. */
export {
  type AuditAppendInput,
  type AuditEntry,
  type AuditHead,
  type AuditLog,
  type AuditState,
  type AuditVerification,
  auditMigrations,
  auditTamperedError,
  defaultAuditLogPath,
  GENESIS_HASH,
  type ListAuditOptions,
  type OpenAuditLogOptions,
  openAuditLog,
  redactSecrets,
  type TamperReason,
} from "./audit-log.js";
export { type SignedJobResult, type SignJobResultParameters, signJobResult } from "./job-result.js";
export { type ReadAuditLogOptions, type ReadAuditLogResult, readAuditLog } from "./read-audit-log.js";
