/**
 * The service behind `gbt agent audit`: reads the newest entries of an audit log and, when asked,
 * verifies the whole chain, failing with AUDIT_TAMPERED (exit 4) at the first altered entry. A
 * log that does not exist yet is an empty, valid log: reading never creates the file.
 */
import { existsSync } from "node:fs";
import { resolvePaths } from "@gbt/store";
import { type AuditEntry, auditTamperedError, defaultAuditLogPath, openAuditLog } from "./audit-log.js";

export interface ReadAuditLogOptions {
  /** The audit file; default `<dataDir>/agent/audit.db`. */
  file?: string | undefined;
  /** Show at most the newest `limit` entries (default 50). */
  limit?: number | undefined;
  /** Verify the whole chain; throws AUDIT_TAMPERED when it does not hold. */
  verify?: boolean | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface ReadAuditLogResult {
  file: string;
  /** Entries in the log. */
  total: number;
  /** The newest entries, oldest first. */
  entries: AuditEntry[];
  /** Present with `verify`: the chain holds over this many entries. */
  verified?: { ok: true; entries: number };
}

/** Reads (and with `verify`, checks) the audit log. */
export function readAuditLog(options: ReadAuditLogOptions = {}): ReadAuditLogResult {
  const file = options.file ?? defaultAuditLogPath(resolvePaths(options.env).dataDir);
  const limit = options.limit ?? 50;
  if (!existsSync(file)) {
    return { file, total: 0, entries: [], ...(options.verify ? { verified: { ok: true, entries: 0 } } : {}) };
  }
  const log = openAuditLog(file);
  try {
    if (options.verify) {
      const verification = log.verify();
      if (!verification.ok) throw auditTamperedError(file, verification);
    }
    const total = log.count();
    const { seq } = log.head();
    const entries = log.list({ limit, afterSeq: Math.max(0, seq - limit) });
    return { file, total, entries, ...(options.verify ? { verified: { ok: true, entries: total } } : {}) };
  } finally {
    log.close();
  }
}
