/**
 * The agent's audit log: one append-only SQLite table in its own file, every row hash-chained to
 * the one before it. Triggers refuse UPDATE and DELETE, so the agent itself cannot rewrite
 * history; anyone who edits the file by other means breaks the chain, and {@link AuditLog.verify}
 * names the first row that no longer matches. Details are redacted before they are stored: the
 * log is meant to be read and shared, secrets never belong in it.
 */
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { canonicalJson, GbtError, hashPayload } from "@gbt/protocol";
import { openDatabase } from "@gbt/store";
import type { Hex } from "viem";

/** Ordered migrations of the audit file; append only, never edit a shipped one. */
export const auditMigrations: readonly string[] = [
  `CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY,
     at INTEGER NOT NULL,
     job_id TEXT NOT NULL,
     type TEXT NOT NULL,
     issuer TEXT NOT NULL,
     state TEXT NOT NULL,
     code TEXT NULL,
     detail_json TEXT NOT NULL,
     result_json TEXT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   ) STRICT;
   CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
   BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
   CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
   BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;`,
];

/** The `prevHash` of the first entry: 32 zero bytes. */
export const GENESIS_HASH: Hex = `0x${"0".repeat(64)}`;

/** The audit file under the node's data directory. */
export function defaultAuditLogPath(dataDir: string): string {
  return join(dataDir, "agent", "audit.db");
}

/** Final outcomes a job can be logged with. */
export type AuditState = "rejected" | "succeeded" | "failed" | "rolled_back";

export interface AuditAppendInput {
  jobId: string;
  /** The job type (e.g. `model.pull`), or what the job claimed to be when it was rejected. */
  type: string;
  issuer: string;
  state: AuditState;
  /** The GbtError code of a rejection or failure. */
  code?: string | undefined;
  /** What happened, as JSON; secrets are redacted before storing. */
  detail: Record<string, unknown>;
  /** The job's result payload (the one a signed JobResult binds), when there is one. */
  result?: unknown;
}

export interface AuditEntry {
  seq: number;
  /** Unix time in milliseconds. */
  at: number;
  jobId: string;
  type: string;
  issuer: string;
  state: string;
  code: string | null;
  detail: unknown;
  result: unknown;
  prevHash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: Hex;
}

export type TamperReason = "hash mismatch" | "broken link" | "gap in sequence";

export type AuditVerification =
  | { ok: true; entries: number }
  | { ok: false; firstTampered: number; reason: TamperReason; entries: number };

export interface ListAuditOptions {
  /** At most this many entries (default 100). */
  limit?: number;
  /** Only entries after this seq (default 0: from the start). */
  afterSeq?: number;
}

export interface AuditLog {
  readonly path: string;
  /** Appends one entry, chained to the current head; returns its seq and hash. */
  append(entry: AuditAppendInput): AuditHead;
  /** Entries in seq order. */
  list(options?: ListAuditOptions): AuditEntry[];
  /** The last entry's seq and hash; seq 0 and the genesis hash on an empty log. */
  head(): AuditHead;
  /** Number of entries stored. */
  count(): number;
  /** Recomputes every hash from the stored columns and checks the links and the sequence. */
  verify(): AuditVerification;
  close(): void;
}

export interface OpenAuditLogOptions {
  /** Clock in milliseconds. */
  now?: () => number;
}

interface AuditRow {
  seq: number;
  at: number;
  job_id: string;
  type: string;
  issuer: string;
  state: string;
  code: string | null;
  detail_json: string;
  result_json: string | null;
  prev_hash: string;
  hash: string;
}

/** Opens (creating if needed, directory 0700, file 0600) the audit log at `path`. */
export function openAuditLog(path: string, options: OpenAuditLogOptions = {}): AuditLog {
  const now = options.now ?? Date.now;
  const db = openDatabase(path, { label: "The audit log", migrations: auditMigrations });
  try {
    chmodSync(path, 0o600);
  } catch {
    // Best effort: a file we cannot chmod (another owner) is still readable for verification.
  }
  const headStatement = db.prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  const insertStatement = db.prepare(
    `INSERT INTO audit_log (seq, at, job_id, type, issuer, state, code, detail_json, result_json, prev_hash, hash)
     VALUES (@seq, @at, @job_id, @type, @issuer, @state, @code, @detail_json, @result_json, @prev_hash, @hash)`,
  );

  const head = (): AuditHead => {
    const row = headStatement.get() as { seq: number; hash: Hex } | undefined;
    return row ?? { seq: 0, hash: GENESIS_HASH };
  };

  const appendInTransaction = db.transaction((entry: AuditAppendInput): AuditHead => {
    const previous = head();
    const detailJson = canonicalJson(redactSecrets(entry.detail));
    const resultJson = entry.result === undefined ? null : canonicalJson(entry.result);
    const row: AuditRow = {
      seq: previous.seq + 1,
      at: Math.floor(now()),
      job_id: entry.jobId,
      type: entry.type,
      issuer: entry.issuer,
      state: entry.state,
      code: entry.code ?? null,
      detail_json: detailJson,
      result_json: resultJson,
      prev_hash: previous.hash,
      hash: "",
    };
    row.hash = hashOfRow(row);
    insertStatement.run(row);
    return { seq: row.seq, hash: row.hash as Hex };
  });

  return {
    path,
    append(entry) {
      // IMMEDIATE: two writers never read the same head and chain to it twice.
      return appendInTransaction.immediate(entry);
    },
    list({ limit = 100, afterSeq = 0 } = {}) {
      const rows = db
        .prepare("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq ASC LIMIT ?")
        .all(afterSeq, limit) as AuditRow[];
      return rows.map(toEntry);
    },
    head,
    count() {
      return (db.prepare("SELECT count(*) AS n FROM audit_log").get() as { n: number }).n;
    },
    verify() {
      return verifyRows(
        db.prepare("SELECT * FROM audit_log ORDER BY seq ASC").iterate() as Iterable<AuditRow>,
      );
    },
    close() {
      db.close();
    },
  };
}

function verifyRows(rows: Iterable<AuditRow>): AuditVerification {
  let expectedSeq = 1;
  let previousHash: string = GENESIS_HASH;
  let entries = 0;
  let failure: { firstTampered: number; reason: TamperReason } | undefined;
  for (const row of rows) {
    entries++;
    if (failure) continue;
    if (row.seq !== expectedSeq) {
      failure = { firstTampered: expectedSeq, reason: "gap in sequence" };
    } else if (safeHashOfRow(row) !== row.hash) {
      failure = { firstTampered: row.seq, reason: "hash mismatch" };
    } else if (row.prev_hash !== previousHash) {
      failure = { firstTampered: row.seq, reason: "broken link" };
    }
    expectedSeq = row.seq + 1;
    previousHash = row.hash;
  }
  return failure ? { ok: false, ...failure, entries } : { ok: true, entries };
}

/** keccak256 of the canonical JSON of the entry's fields, as the stored columns say. */
function hashOfRow(row: AuditRow): Hex {
  return hashPayload({
    seq: row.seq,
    at: row.at,
    jobId: row.job_id,
    type: row.type,
    issuer: row.issuer,
    state: row.state,
    code: row.code,
    detail: JSON.parse(row.detail_json) as unknown,
    result: row.result_json === null ? null : (JSON.parse(row.result_json) as unknown),
    prevHash: row.prev_hash,
  });
}

/** A row whose JSON no longer parses was altered too. */
function safeHashOfRow(row: AuditRow): Hex | undefined {
  try {
    return hashOfRow(row);
  } catch {
    return undefined;
  }
}

function toEntry(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    at: row.at,
    jobId: row.job_id,
    type: row.type,
    issuer: row.issuer,
    state: row.state,
    code: row.code,
    detail: parseOrRaw(row.detail_json),
    result: row.result_json === null ? null : parseOrRaw(row.result_json),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** Listing must still work on a damaged file: text that is not JSON is shown as it is. */
function parseOrRaw(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const REDACTED = "[redacted]";
const secretKeys = new Set([
  "passphrase",
  "privatekey",
  "token",
  "authorization",
  "password",
  "secret",
  "apikey",
]);
const secretHex = /\b0x[0-9a-fA-F]{64}\b/g;

function isSecretKey(key: string): boolean {
  const normalized = key.toLowerCase().replace(/[^a-z0-9]/g, "");
  return secretKeys.has(normalized) || normalized.endsWith("token") || normalized.endsWith("privatekey");
}

/**
 * A copy of `value` with anything that looks like a secret replaced by "[redacted]": values of
 * keys such as `passphrase`, `privateKey`, `token`, `authorization`, and any 0x + 64 hex string
 * (the shape of a private key; 32-byte hashes look the same and are redacted too, so keep those
 * in the result, not the detail).
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === "string") return value.replace(secretHex, REDACTED);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      copy[key] = isSecretKey(key) && item !== undefined && item !== null ? REDACTED : redactSecrets(item);
    }
    return copy;
  }
  return value;
}

/** The error `gbt agent audit --verify` fails with when the chain does not hold. */
export function auditTamperedError(
  path: string,
  failure: { firstTampered: number; reason: TamperReason },
): GbtError {
  return new GbtError(
    "AUDIT_TAMPERED",
    `Audit entry #${failure.firstTampered} was altered (${failure.reason}); the log cannot be trusted from there on.`,
    {
      details: { file: path, firstTampered: failure.firstTampered, reason: failure.reason },
      hint: "Keep a copy of the file as evidence, check who had write access to it, and compare with a backup.",
    },
  );
}
