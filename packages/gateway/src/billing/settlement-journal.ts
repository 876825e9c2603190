/**
 * The write-ahead of settlements: every served request's usage is appended, as one JSON line, to
 * the journal (`<data dir>/settlement-journal/*.jsonl`) in the same synchronous step that hands
 * it to the settler, as the response ends; at start the gateway settles what the journal holds
 * before it serves. So a `kill -9` at any moment loses no served request, and the ledger's unique
 * request id makes the replay idempotent: a request whose transaction landed just before the
 * crash is found in the ledger and dropped, never billed twice.
 *
 * Why a log and not a table: one `write(2)` per request (~3 µs) makes the line survive the
 * process, where a SQLite commit costs ~16 µs of CPU and its checkpoints fsync on the request
 * path (and gateway.db's write lock is the settlement worker's for a whole batch). Like SQLite's
 * synchronous=NORMAL, it survives a crash of the process, not of the machine. The log is cut in
 * segments; a segment is deleted (the last one truncated) once every request in it is settled,
 * refused as already settled, or given up.
 *
 * Settlements given up on go to `settlement_dead_letters` in gateway.db with their last error,
 * for an operator to see (`gbt gateway dead-letters`) and re-queue: a re-queued one is journalled
 * again at the next start.
 */
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { GbtError } from "@gbt/protocol";
import { z } from "zod";
import type { GatewayDatabase } from "../gateway-database.js";
import { modelPriceSchema } from "./pricing.js";

/** The journal's directory in the gateway's data dir. */
export function settlementJournalDir(dataDir: string): string {
  return join(dataDir, "settlement-journal");
}

/**
 * What the settler needs to bill a served request, fixed as the response ends: the gateway's own
 * view of the tokens, the node's receipt (verified later, as of `servedAt`), and the multipliers
 * of that moment (the pool is empty again after a restart).
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
  /** When `gbt gateway dead-letters --retry` re-queued it (settled at the gateway's next start). */
  requeuedAt: string | null;
}

interface Segment {
  path: string;
  /** Journalled requests of this segment not yet settled or given up. */
  open: number;
}

/** A segment is cut after this many bytes. */
const SEGMENT_BYTES = 8 * 1024 * 1024;
/** The live segment is truncated, once all of it is settled, past this many bytes. */
const TRUNCATE_BYTES = 256 * 1024;
const SEGMENT_NAME = /^\d{16}\.jsonl$/;

const errorCode = (error: unknown): string | null =>
  typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string"
    ? (error as { code: string }).code
    : null;

export interface SettlementJournalOptions {
  /** The journal's directory (`settlementJournalDir(dataDir)`). */
  dir: string;
  now?: () => number;
}

export class SettlementJournal {
  readonly #dir: string;
  readonly #now: () => number;
  /** Segments left by an earlier run, until `recover` reads them. */
  #earlier: string[];
  #sequence: number;
  #current: Segment;
  #fd: number;
  #bytes = 0;
  /** Each journalled request not yet resolved: its segment and line. */
  readonly #open = new Map<string, { segment: Segment; line: string }>();
  readonly #insertDeadLetter;

  /** Opens the journal in `dir` beside the gateway database `db`, which keeps the dead letters. */
  constructor(
    readonly db: GatewayDatabase,
    options: SettlementJournalOptions,
  ) {
    this.#dir = options.dir;
    this.#now = options.now ?? Date.now;
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#earlier = readdirSync(this.#dir)
      .filter((name) => SEGMENT_NAME.test(name))
      .sort();
    const last = this.#earlier.at(-1);
    this.#sequence = last === undefined ? 0 : Number(last.slice(0, 16));
    [this.#current, this.#fd] = this.#openSegment();
    this.#insertDeadLetter = db.prepare(
      `INSERT OR REPLACE INTO settlement_dead_letters
         (request_id, account_id, node, model, served_at, record, attempts, error_code, error_message, failed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  #openSegment(): [Segment, number] {
    this.#sequence += 1;
    const path = join(this.#dir, `${String(this.#sequence).padStart(16, "0")}.jsonl`);
    this.#bytes = 0;
    return [{ path, open: 0 }, openSync(path, "a", 0o600)];
  }

  /** Journals a served request before anything else happens to it: one appended line. */
  record(pending: PendingSettlement): void {
    const line = `${JSON.stringify(pending)}\n`;
    if (this.#bytes >= SEGMENT_BYTES) {
      closeSync(this.#fd);
      const full = this.#current;
      [this.#current, this.#fd] = this.#openSegment();
      if (full.open === 0) unlinkSync(full.path);
    }
    this.#bytes += writeSync(this.#fd, line);
    this.#current.open += 1;
    this.#open.set(pending.requestId, { segment: this.#current, line });
  }

  /** Requests whose ledger transaction is durable, or was found there: their lines are done with. */
  settled(requestIds: readonly string[]): void {
    for (const requestId of requestIds) this.#resolve(requestId);
  }

  /**
   * Gives a journalled request up: its record and error go to the dead letters (which the
   * settlement queue reports), its line is done with. False when it was not journalled here.
   */
  deadLetter(requestId: string, attempts: number, error: unknown): boolean {
    const entry = this.#open.get(requestId);
    if (entry === undefined) return false;
    this.#writeDeadLetter(requestId, entry.line, attempts, error);
    this.#resolve(requestId);
    return true;
  }

  #writeDeadLetter(requestId: string, line: string, attempts: number, error: unknown): void {
    let fields: Pick<PendingSettlement, "accountId" | "node" | "model" | "servedAt">;
    try {
      fields = pendingSettlementSchema.parse(JSON.parse(line));
    } catch {
      fields = { accountId: "?", node: "?", model: "?", servedAt: 0 };
    }
    const message = error instanceof Error ? error.message : String(error);
    this.#insertDeadLetter.run(
      requestId,
      fields.accountId,
      fields.node,
      fields.model,
      fields.servedAt,
      line.trimEnd(),
      attempts,
      errorCode(error),
      message,
      this.#now(),
    );
  }

  #resolve(requestId: string): void {
    const entry = this.#open.get(requestId);
    if (entry === undefined) return;
    this.#open.delete(requestId);
    const segment = entry.segment;
    segment.open -= 1;
    if (segment.open > 0) return;
    if (segment !== this.#current) unlinkSync(segment.path);
    else if (this.#bytes >= TRUNCATE_BYTES) {
      // Everything in the live segment is settled: start it over rather than let it grow. Not after
      // every request (a truncate costs more than the write it follows, at low load once a request):
      // settled lines left behind are harmless, a replay finds them in the ledger and drops them.
      ftruncateSync(this.#fd, 0);
      this.#bytes = 0;
    }
  }

  /**
   * What an earlier run left unsettled, for the start to settle before it serves: the requests of
   * its segments (those already given up excepted), and the dead letters re-queued since, which
   * are journalled again here first. Once per start, before the first `record`. A line that does
   * not parse cannot be billed as it is: it becomes a dead letter.
   */
  recover(): PendingSettlement[] {
    const deadLettered = new Set(
      (
        this.db.prepare("SELECT request_id FROM settlement_dead_letters WHERE requeued_at IS NULL").all() as {
          request_id: string;
        }[]
      ).map((row) => row.request_id),
    );
    const found = new Map<string, PendingSettlement>();
    for (const name of this.#earlier) {
      const segment: Segment = { path: join(this.#dir, name), open: 0 };
      const text = readFileSync(segment.path, "utf8");
      // A last line without its newline was being written when the process died: never handed over.
      const lines = text.split("\n").slice(0, -1);
      for (const line of lines) {
        if (line === "") continue;
        const parsed = parseLine(line);
        if (!parsed.ok) {
          this.#writeDeadLetter(parsed.requestId, line, 0, parsed.error);
          continue;
        }
        const requestId = parsed.pending.requestId;
        if (deadLettered.has(requestId) || this.#open.has(requestId)) continue;
        found.set(requestId, parsed.pending);
        segment.open += 1;
        this.#open.set(requestId, { segment, line: `${line}\n` });
      }
      if (segment.open === 0) unlinkSync(segment.path);
    }
    this.#earlier = [];
    const requeued = this.db
      .prepare("SELECT request_id, record FROM settlement_dead_letters WHERE requeued_at IS NOT NULL")
      .all() as { request_id: string; record: string }[];
    const remove = this.db.prepare("DELETE FROM settlement_dead_letters WHERE request_id = ?");
    for (const row of requeued) {
      const parsed = parseLine(row.record);
      if (!parsed.ok) continue;
      // Journalled first, then taken off the dead letters: a crash between the two settles it once anyway.
      if (!found.has(row.request_id)) {
        this.record(parsed.pending);
        found.set(row.request_id, parsed.pending);
      }
      remove.run(row.request_id);
    }
    return [...found.values()].sort((a, b) => a.servedAt - b.servedAt);
  }

  /** How many journalled requests wait for their ledger transaction. */
  get pendingCount(): number {
    return this.#open.size;
  }

  /** Closes the live segment (deleted when nothing in it is unsettled); what is unsettled waits for the next start. */
  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
    if (this.#current.open === 0) unlinkSync(this.#current.path);
  }
}

function parseLine(
  line: string,
): { ok: true; pending: PendingSettlement } | { ok: false; requestId: string; error: GbtError } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    value = undefined;
  }
  const parsed = pendingSettlementSchema.safeParse(value);
  if (parsed.success) return { ok: true, pending: parsed.data };
  const requestId =
    typeof (value as { requestId?: unknown } | undefined)?.requestId === "string"
      ? String((value as { requestId: string }).requestId).slice(0, 200)
      : `unreadable:${line.length}:${line.slice(0, 32)}`;
  return {
    ok: false,
    requestId,
    error: new GbtError("INTERNAL", `The settlement journal's line for ${requestId} is unreadable.`, {
      details: { requestId },
      hint: "It was written by another gbt version or edited; bill it by hand (`gbt gateway keys` adjustments).",
    }),
  };
}

interface DeadLetterRow {
  request_id: string;
  account_id: string;
  node: string;
  model: string;
  served_at: number;
  attempts: number;
  error_code: string | null;
  error_message: string;
  failed_at: number;
  requeued_at: number | null;
}

/** The dead letters of a gateway database, oldest failure first. */
export function listDeadLetters(db: GatewayDatabase): DeadLetter[] {
  const rows = db
    .prepare("SELECT * FROM settlement_dead_letters ORDER BY failed_at, request_id")
    .all() as DeadLetterRow[];
  return rows.map((row) => ({
    requestId: row.request_id,
    accountId: row.account_id,
    node: row.node,
    model: row.model,
    servedAt: new Date(row.served_at).toISOString(),
    attempts: row.attempts,
    error: { code: row.error_code, message: row.error_message },
    failedAt: new Date(row.failed_at).toISOString(),
    requeuedAt: row.requeued_at === null ? null : new Date(row.requeued_at).toISOString(),
  }));
}

/**
 * Marks dead letters (all, or those named) to be settled again at the gateway's next start, once:
 * a request the ledger already holds is dropped then. Returns the request ids marked.
 */
export function requeueDeadLetters(
  db: GatewayDatabase,
  requestIds?: readonly string[],
  now: () => number = Date.now,
): string[] {
  const mark = db.prepare(
    "UPDATE settlement_dead_letters SET requeued_at = ? WHERE request_id = ? AND requeued_at IS NULL",
  );
  return db.transaction(() => {
    const ids =
      requestIds ??
      (
        db.prepare("SELECT request_id FROM settlement_dead_letters WHERE requeued_at IS NULL").all() as {
          request_id: string;
        }[]
      ).map((row) => row.request_id);
    const at = now();
    return ids.filter((id) => mark.run(at, id).changes > 0);
  })();
}
