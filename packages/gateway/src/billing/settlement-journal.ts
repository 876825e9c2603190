/**
 * The write-ahead of settlements: every served request's usage is written here, in its own
 * SQLite file beside gateway.db, in the same synchronous step that hands it to the settler (as
 * the response ends), and deleted once its ledger transaction is durable. At start the gateway
 * settles what is left before it serves, so a `kill -9` at any moment loses no served request.
 * The ledger's unique request id makes that replay idempotent: a row whose transaction landed
 * just before the crash is found in the ledger and dropped, never billed twice.
 *
 * Why a file of its own: SQLite's write lock is per file, and the settlement worker holds
 * gateway.db's for a whole batch; the request path must never wait on it. Only this process's
 * main thread writes here (one prepared INSERT per request, WAL, synchronous=NORMAL: durable
 * against a process crash, not fsynced per request). Settlements that keep failing leave the
 * pending table for `settlement_dead_letters`, in the same transaction, for an operator to see
 * (`gbt gateway dead-letters`) and re-queue.
 */
import { join } from "node:path";
import { GbtError } from "@gbt/protocol";
import { openDatabase, type SqliteDatabase } from "@gbt/store";
import { z } from "zod";
import { modelPriceSchema } from "./pricing.js";

/** Ordered migrations of settlement-journal.db; append only, never edit a shipped one. */
export const settlementJournalMigrations: readonly string[] = [
  `CREATE TABLE pending_settlements (
     request_id TEXT PRIMARY KEY,
     served_at INTEGER NOT NULL,
     record TEXT NOT NULL
   ) STRICT;
   CREATE TABLE settlement_dead_letters (
     request_id TEXT PRIMARY KEY,
     served_at INTEGER NOT NULL,
     record TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     error_code TEXT,
     error_message TEXT NOT NULL,
     failed_at INTEGER NOT NULL
   ) STRICT;`,
];

/** The journal's file in the gateway's data dir. */
export function settlementJournalPath(dataDir: string): string {
  return join(dataDir, "settlement-journal.db");
}

/**
 * What the settler needs to bill a served request, fixed as the response ends: the gateway's own
 * view of the tokens, the node's receipt (verified later, at `servedAt`), and the multipliers of
 * that moment (the pool is empty again after a restart).
 */
export const pendingSettlementSchema = z.object({
  requestId: z.string().min(1).max(200),
  accountId: z.string().min(1).max(200),
  keyId: z.string().max(200).nullable(),
  node: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  model: z.string().min(1).max(256),
  stream: z.boolean(),
  state: z.enum(["complete", "failed", "cancelled"]),
  relayedCompletionTokens: z.number().int().min(0),
  /** The usage of a whole response as the gateway read it (null prompt: unknown). */
  viewPromptTokens: z.number().int().min(0).nullable(),
  viewCompletionTokens: z.number().int().min(0),
  receipt: z.string().nullable(),
  maxTokens: z.number().int().min(0),
  promptBound: z.number().int().min(0),
  price: modelPriceSchema,
  multipliers: z.object({
    providerShare: z.number(),
    rampFactor: z.number(),
    switchPenalty: z.number(),
    bounty: z.number(),
    reputation: z.number(),
  }),
  servedAt: z.number().int().min(0),
});
export type PendingSettlement = z.infer<typeof pendingSettlementSchema>;

/** A settlement given up on, with why. */
export interface DeadLetter {
  requestId: string;
  accountId: string;
  node: string;
  model: string;
  servedAt: string;
  attempts: number;
  error: { code: string | null; message: string };
  failedAt: string;
}

interface DeadLetterRow {
  request_id: string;
  served_at: number;
  record: string;
  attempts: number;
  error_code: string | null;
  error_message: string;
  failed_at: number;
}

const errorCode = (error: unknown): string | null =>
  typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string"
    ? (error as { code: string }).code
    : null;

/** Opens (creating and migrating) the settlement journal of a gateway data dir. */
export function openSettlementJournal(dataDir: string, now: () => number = Date.now): SettlementJournal {
  return new SettlementJournal(
    openDatabase(settlementJournalPath(dataDir), {
      label: "The settlement journal",
      migrations: settlementJournalMigrations,
    }),
    now,
  );
}

export class SettlementJournal {
  readonly #insert;
  readonly #delete;
  readonly #settled;
  readonly #deadLetter;
  readonly #requeue;

  constructor(
    readonly db: SqliteDatabase,
    private readonly now: () => number = Date.now,
  ) {
    // OR REPLACE: a replayed or re-queued request is journalled again under the same id.
    this.#insert = db.prepare(
      "INSERT OR REPLACE INTO pending_settlements (request_id, served_at, record) VALUES (?, ?, ?)",
    );
    this.#delete = db.prepare("DELETE FROM pending_settlements WHERE request_id = ?");
    this.#settled = db.transaction((requestIds: readonly string[]) => {
      for (const requestId of requestIds) this.#delete.run(requestId);
    });
    const insertDeadLetter = db.prepare(
      `INSERT OR REPLACE INTO settlement_dead_letters
         (request_id, served_at, record, attempts, error_code, error_message, failed_at)
       SELECT request_id, served_at, record, ?, ?, ?, ? FROM pending_settlements WHERE request_id = ?`,
    );
    this.#deadLetter = db.transaction(
      (requestId: string, attempts: number, error: unknown, failedAt: number): boolean => {
        const message = error instanceof Error ? error.message : String(error);
        const moved = insertDeadLetter.run(attempts, errorCode(error), message, failedAt, requestId).changes;
        this.#delete.run(requestId);
        return moved > 0;
      },
    );
    const selectDeadLetters = db.prepare(
      "SELECT request_id, served_at, record FROM settlement_dead_letters ORDER BY failed_at, request_id",
    );
    const deleteDeadLetter = db.prepare("DELETE FROM settlement_dead_letters WHERE request_id = ?");
    this.#requeue = db.transaction((requestIds: readonly string[] | undefined) => {
      const wanted = requestIds === undefined ? undefined : new Set(requestIds);
      const rows = (
        selectDeadLetters.all() as Pick<DeadLetterRow, "request_id" | "served_at" | "record">[]
      ).filter((row) => wanted === undefined || wanted.has(row.request_id));
      for (const row of rows) {
        this.#insert.run(row.request_id, row.served_at, row.record);
        deleteDeadLetter.run(row.request_id);
      }
      return rows.map((row) => row.request_id);
    });
  }

  /** Journals a served request before anything else happens to it: one prepared INSERT, one commit. */
  record(pending: PendingSettlement): void {
    this.#insert.run(pending.requestId, pending.servedAt, JSON.stringify(pending));
  }

  /** Drops the rows whose ledger transaction is durable (or was found there), in one transaction. */
  settled(requestIds: readonly string[]): void {
    if (requestIds.length > 0) this.#settled(requestIds);
  }

  /** Moves a settlement given up on to the dead letters, with its error; false when it was not pending. */
  deadLetter(requestId: string, attempts: number, error: unknown): boolean {
    return this.#deadLetter(requestId, attempts, error, this.now());
  }

  /**
   * Every request still waiting for its ledger transaction, oldest first. A row that does not
   * parse (another version's, or edited) cannot be billed as it is: it goes to the dead letters.
   */
  pending(): PendingSettlement[] {
    const rows = this.db
      .prepare("SELECT request_id, record FROM pending_settlements ORDER BY served_at, rowid")
      .all() as { request_id: string; record: string }[];
    return rows.flatMap((row) => {
      try {
        return [parseRecord(row.request_id, row.record)];
      } catch (error) {
        this.deadLetter(row.request_id, 0, error);
        return [];
      }
    });
  }

  /** How many requests wait for their ledger transaction. */
  pendingCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM pending_settlements").get() as { n: number }).n;
  }

  /** The dead letters, oldest failure first. */
  deadLetters(): DeadLetter[] {
    const rows = this.db
      .prepare("SELECT * FROM settlement_dead_letters ORDER BY failed_at, request_id")
      .all() as DeadLetterRow[];
    return rows.map((row) => {
      let record: Pick<PendingSettlement, "accountId" | "node" | "model">;
      try {
        record = parseRecord(row.request_id, row.record);
      } catch {
        record = { accountId: "?", node: "?", model: "?" };
      }
      return {
        requestId: row.request_id,
        accountId: record.accountId,
        node: record.node,
        model: record.model,
        servedAt: new Date(row.served_at).toISOString(),
        attempts: row.attempts,
        error: { code: row.error_code, message: row.error_message },
        failedAt: new Date(row.failed_at).toISOString(),
      };
    });
  }

  /**
   * Moves dead letters (all, or those named) back to the pending settlements, which the gateway
   * settles at its next start. Returns the request ids moved.
   */
  requeueDeadLetters(requestIds?: readonly string[]): string[] {
    return this.#requeue.immediate(requestIds);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function parseRecord(requestId: string, record: string): PendingSettlement {
  let value: unknown;
  try {
    value = JSON.parse(record);
  } catch {
    value = undefined;
  }
  const parsed = pendingSettlementSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new GbtError("INTERNAL", `The settlement journal's row for ${requestId} is unreadable.`, {
    details: { requestId },
    hint: "The journal was written by another gbt version or edited by hand; restore it from a backup.",
  });
}

/** Runs `fn` on the settlement journal of a gateway data dir, opening and closing it (the CLI's offline access). */
export function withSettlementJournal<T>(dataDir: string, fn: (journal: SettlementJournal) => T): T {
  const journal = openSettlementJournal(dataDir);
  try {
    return fn(journal);
  } finally {
    journal.close();
  }
}
