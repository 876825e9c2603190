/**
 * Verification's tables in gateway.db: every challenge outcome, every evidence record and the
 * slashing proposals that objective fraud produces for governance. Trust is keyed by the
 * instance (the node's address), never by whoever stakes for it: moving stake to a new node
 * starts that node from nothing. Like the model registry, the schema version lives in its own
 * meta row; migrations are append-only and idempotent.
 */
import { GbtError, hashPayload } from "@gbt/protocol";
import { migrate } from "@gbt/store";
import type { Ledger } from "../billing/ledger.js";
import type { GatewayDatabase } from "../gateway-database.js";

/** Where the settled usage records are read from (the ledger, on the same database). */
export type UsageFeed = Pick<Ledger, "usageAfter">;

export const verificationMigrations: readonly string[] = [
  `CREATE TABLE verification_challenges (
     id INTEGER PRIMARY KEY,
     instance_id TEXT NOT NULL,
     node TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('canary', 'sample', 'benchmark')),
     outcome TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'error')),
     details_json TEXT NOT NULL,
     evidence_id TEXT,
     at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX verification_challenges_by_instance ON verification_challenges (instance_id, at);
   CREATE TABLE verification_evidence (
     id TEXT PRIMARY KEY,
     hash TEXT NOT NULL UNIQUE,
     instance_id TEXT NOT NULL,
     node TEXT NOT NULL,
     kind TEXT NOT NULL,
     severity TEXT NOT NULL CHECK (severity IN ('fraud', 'quality')),
     summary TEXT NOT NULL,
     details_json TEXT NOT NULL,
     at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX verification_evidence_by_instance ON verification_evidence (instance_id, at);
   CREATE TABLE verification_slashing_proposals (
     id INTEGER PRIMARY KEY,
     evidence_id TEXT NOT NULL UNIQUE REFERENCES verification_evidence (id),
     node TEXT NOT NULL,
     evidence_hash TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('proposed', 'submitted', 'withdrawn')),
     created_at INTEGER NOT NULL
   ) STRICT;`,
];

/** Brings the verification tables to the latest schema; safe to call on every start. */
export function migrateVerification(db: GatewayDatabase): void {
  migrate(db, {
    prefix: "verification",
    label: "Verification",
    migrations: verificationMigrations,
  });
}

export type ChallengeKind = "canary" | "sample" | "benchmark";
export type ChallengeOutcome = "pass" | "fail" | "error";
export type EvidenceSeverity = "fraud" | "quality";
/** Objective fraud kinds; anything else is a soft quality failure. */
export const fraudKinds = [
  "signature_mismatch",
  "model_digest_mismatch",
  "receipt_not_delivered",
  "benchmark_spoofed",
] as const;
export type EvidenceKind = (typeof fraudKinds)[number] | "canary_mismatch" | "sample_outvoted";

export interface ChallengeRecord {
  id: number;
  instanceId: string;
  node: string;
  kind: ChallengeKind;
  outcome: ChallengeOutcome;
  details: Record<string, unknown>;
  evidenceId: string | null;
  at: number;
}

export interface EvidenceRecord {
  id: string;
  /** keccak256 of the canonical JSON of {kind, node, instanceId, details, at}: what goes on chain. */
  hash: `0x${string}`;
  instanceId: string;
  node: string;
  kind: EvidenceKind;
  severity: EvidenceSeverity;
  summary: string;
  details: Record<string, unknown>;
  at: number;
  slashingProposal: { id: number; status: string; evidenceHash: string; createdAt: number } | null;
}

export interface RefusedReceipt {
  requestId: string;
  node: string;
  status: "mismatch" | "invalid";
  /** What the gateway billed: its own count when the receipt was refused. */
  billedCompletionTokens: number;
  receiptJson: string;
}

export interface NewEvidence {
  instanceId: string;
  node: string;
  kind: EvidenceKind;
  summary: string;
  details: Record<string, unknown>;
}

interface EvidenceRow {
  id: string;
  hash: string;
  instance_id: string;
  node: string;
  kind: string;
  severity: string;
  summary: string;
  details_json: string;
  at: number;
  proposal_id: number | null;
  proposal_status: string | null;
  proposal_created_at: number | null;
}

const EVIDENCE_SELECT = `SELECT e.*, p.id AS proposal_id, p.status AS proposal_status, p.created_at AS proposal_created_at
  FROM verification_evidence e LEFT JOIN verification_slashing_proposals p ON p.evidence_id = e.id`;

export class EvidenceStore {
  readonly #db: GatewayDatabase;
  readonly #now: () => number;

  constructor(db: GatewayDatabase, now: () => number) {
    this.#db = db;
    this.#now = now;
    migrateVerification(db);
  }

  /** Records an evidence record; objective fraud also gets a slashing proposal for governance. */
  addEvidence(evidence: NewEvidence): EvidenceRecord {
    const at = this.#now();
    const severity: EvidenceSeverity = (fraudKinds as readonly string[]).includes(evidence.kind)
      ? "fraud"
      : "quality";
    const hash = hashPayload({
      kind: evidence.kind,
      node: evidence.node.toLowerCase(),
      instanceId: evidence.instanceId,
      details: evidence.details,
      at,
    });
    const id = `ev_${hash.slice(2, 18)}`;
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO verification_evidence (id, hash, instance_id, node, kind, severity, summary, details_json, at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        )
        .run(
          id,
          hash,
          evidence.instanceId,
          evidence.node,
          evidence.kind,
          severity,
          evidence.summary,
          JSON.stringify(evidence.details),
          at,
        );
      if (severity === "fraud") {
        this.#db
          .prepare(
            `INSERT INTO verification_slashing_proposals (evidence_id, node, evidence_hash, status, created_at)
             VALUES (?, ?, ?, 'proposed', ?) ON CONFLICT (evidence_id) DO NOTHING`,
          )
          .run(id, evidence.node, hash, at);
      }
    })();
    return this.getEvidence(id);
  }

  recordChallenge(record: Omit<ChallengeRecord, "id" | "at">): ChallengeRecord {
    const at = this.#now();
    const info = this.#db
      .prepare(
        `INSERT INTO verification_challenges (instance_id, node, kind, outcome, details_json, evidence_id, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.instanceId,
        record.node,
        record.kind,
        record.outcome,
        JSON.stringify(record.details),
        record.evidenceId,
        at,
      );
    return { ...record, id: Number(info.lastInsertRowid), at };
  }

  /** Challenges of an instance since `since`, oldest first. */
  challenges(instanceId: string, since: number): ChallengeRecord[] {
    const rows = this.#db
      .prepare("SELECT * FROM verification_challenges WHERE instance_id = ? AND at >= ? ORDER BY at, id")
      .all(instanceId, since) as Array<{
      id: number;
      instance_id: string;
      node: string;
      kind: ChallengeKind;
      outcome: ChallengeOutcome;
      details_json: string;
      evidence_id: string | null;
      at: number;
    }>;
    return rows.map((row) => ({
      id: row.id,
      instanceId: row.instance_id,
      node: row.node,
      kind: row.kind,
      outcome: row.outcome,
      details: JSON.parse(row.details_json) as Record<string, unknown>,
      evidenceId: row.evidence_id,
      at: row.at,
    }));
  }

  /**
   * Consumer requests settled since the last call whose receipt the settler refused: `mismatch`
   * (its tokens disagree with what the gateway relayed) or `invalid` (a check failed, the
   * signature among them). The position is kept in the meta table, so each row is seen once.
   */
  takeRefusedReceipts(usage: UsageFeed, limit = 1000): RefusedReceipt[] {
    return this.#db
      .transaction(() => {
        const last =
          (
            this.#db.prepare("SELECT value FROM verification_meta WHERE key = 'usage_scan_rowid'").get() as
              | { value: number }
              | undefined
          )?.value ?? 0;
        const rows = usage.usageAfter(last, limit);
        if (rows.length === 0) return [];
        this.#db
          .prepare(
            "INSERT INTO verification_meta (key, value) VALUES ('usage_scan_rowid', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          )
          .run((rows[rows.length - 1] as { position: number }).position);
        return rows.flatMap((row): RefusedReceipt[] =>
          (row.receiptStatus === "mismatch" || row.receiptStatus === "invalid") && row.receiptJson !== null
            ? [
                {
                  requestId: row.requestId,
                  node: row.node,
                  status: row.receiptStatus,
                  billedCompletionTokens: row.completionTokens,
                  receiptJson: row.receiptJson,
                },
              ]
            : [],
        );
      })
      .immediate();
  }

  getEvidence(id: string): EvidenceRecord {
    const row = this.#db.prepare(`${EVIDENCE_SELECT} WHERE e.id = ?`).get(id) as EvidenceRow | undefined;
    if (row === undefined) {
      throw new GbtError("NOT_FOUND", `No evidence record ${id}.`, {
        details: { id },
        hint: "List the records with `gbt gateway evidence list`.",
      });
    }
    return evidenceOf(row);
  }

  /** Evidence records, newest first. */
  listEvidence(filter: { instanceId?: string; since?: number; limit?: number } = {}): EvidenceRecord[] {
    const rows = this.#db
      .prepare(
        `${EVIDENCE_SELECT} WHERE (? IS NULL OR e.instance_id = ?) AND e.at >= ? ORDER BY e.at DESC, e.id LIMIT ?`,
      )
      .all(
        filter.instanceId ?? null,
        filter.instanceId ?? null,
        filter.since ?? 0,
        filter.limit ?? 500,
      ) as EvidenceRow[];
    return rows.map(evidenceOf);
  }
}

function evidenceOf(row: EvidenceRow): EvidenceRecord {
  return {
    id: row.id,
    hash: row.hash as `0x${string}`,
    instanceId: row.instance_id,
    node: row.node,
    kind: row.kind as EvidenceKind,
    severity: row.severity as EvidenceSeverity,
    summary: row.summary,
    details: JSON.parse(row.details_json) as Record<string, unknown>,
    at: row.at,
    slashingProposal:
      row.proposal_id === null
        ? null
        : {
            id: row.proposal_id,
            status: row.proposal_status ?? "proposed",
            evidenceHash: row.hash,
            createdAt: row.proposal_created_at ?? row.at,
          },
  };
}
