/**
 * Takes settlements off the request path. `SettlementQueue` buffers them in memory and hands each
 * batch, as one SQLite transaction, to the settlement worker (a thread with its own connection to
 * the same WAL file, see settlement-worker.ts), or writes it on this thread when there is no
 * worker. A credit hold passed with a settlement stays until its debit is durable.
 *
 * A write that fails (the batch could not be written: disk, lock, a lost worker) is tried again
 * after a doubling delay; after the last attempt, or at once for one that can never be written
 * (an unknown account), it goes to the journal's dead letters. Once a transaction is durable its
 * journal row (settlement-journal.ts) is dropped; a request the ledger already holds (a replay
 * after a crash) is dropped too, never billed twice.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { GbtError, isGbtError } from "@gbt/protocol";
import type { z } from "zod";
import type { CreditHold, CreditHolds } from "./credit-holds.js";
import {
  type BatchOutcome,
  type Ledger,
  parseUsageSettlement,
  type UsageSettlement,
  type usageSettlementSchema,
} from "./ledger.js";
import type { SettlementJournal } from "./settlement-journal.js";
import {
  type FromWorker,
  fromWireError,
  type SettledUsage,
  type SettlementWorkerData,
  type ToWorker,
} from "./settlement-writer.js";

export interface SettlementQueueOptions {
  /**
   * A settlement that was not written, with why and after how many attempts; its hold has already
   * been released. ALREADY_EXISTS: the ledger holds the request (a replay after a crash), nothing
   * was billed twice; anything else was given up on and, with a journal, is in the dead letters.
   */
  onError: (error: unknown, settlement: UsageSettlement, attempts: number) => void;
  /** Called after each settlement is durable. */
  onSettled?: (settled: SettledUsage) => void;
  /** A write that failed and will be tried again in `delayMs`. */
  onRetry?: (error: unknown, settlement: UsageSettlement, attempt: number, delayMs: number) => void;
  /** The write-ahead whose rows follow the ledger: dropped once durable, dead-lettered when given up. */
  journal?: SettlementJournal;
  /** Attempts in all before a dead letter (default 5), and the delay before the second (default 200 ms, doubling up to 5 s). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** The reservations whose cached balances follow the ledger: debits are applied as they land. */
  reservations?: CreditHolds;
  /**
   * Write on a worker thread with its own connection to the same WAL file (default: true for a
   * file database whose worker script is found, else the writes stay on this thread).
   */
  worker?: boolean;
}

interface Queued {
  settlement: z.output<typeof usageSettlementSchema>;
  holds: CreditHold[];
  /** Writes tried so far. */
  attempts: number;
}

/** A refusal that no retry changes: the account is unknown, or the settlement malformed. */
const neverWritable = (error: unknown): boolean =>
  isGbtError(error) && (error.code === "NOT_FOUND" || error.code === "INVALID_INPUT");
const alreadyInLedger = (error: unknown): boolean => isGbtError(error) && error.code === "ALREADY_EXISTS";

/** The compiled worker beside this module; under vitest (sources), the package's dist build. */
function settlementWorkerUrl(): URL | undefined {
  const beside = new URL("./settlement-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL("../../dist/billing/settlement-worker.js", import.meta.url);
  return existsSync(fileURLToPath(built)) ? built : undefined;
}

/** How long `flushSync` waits for the worker before it declares the worker lost. */
const WORKER_STALL_MS = 60_000;

/**
 * Takes settlements off the request path: `enqueue` only validates and buffers; the buffer goes,
 * as one SQLite transaction, to the settlement worker (one batch in flight at a time; what
 * arrives meanwhile makes the next batch) or, without a worker, is written on the next
 * `setImmediate`. A hold passed with a settlement keeps the consumer's credit reserved until its
 * debit is durable, so there is no moment when the money is neither held nor debited.
 */
export class SettlementQueue {
  #buffer: Queued[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  readonly #worker: Worker | undefined;
  readonly #port: MessagePort | undefined;
  readonly #answered: Int32Array | undefined;
  /** Batches sent to the worker and not yet reported, by id. */
  readonly #inFlight = new Map<number, Queued[]>();
  #sent = 0;
  #lost: Error | undefined;
  #waiters: { upTo: number; resolve: () => void }[] = [];
  /** Failed writes waiting for their next attempt. */
  readonly #retrying = new Map<Queued, NodeJS.Timeout>();
  readonly #retry: { attempts: number; baseDelayMs: number; maxDelayMs: number };

  constructor(
    readonly ledger: Ledger,
    private readonly options: SettlementQueueOptions,
  ) {
    this.#retry = {
      attempts: options.retry?.attempts ?? 5,
      baseDelayMs: options.retry?.baseDelayMs ?? 200,
      maxDelayMs: options.retry?.maxDelayMs ?? 5_000,
    };
    const url = options.worker === false || ledger.db.memory ? undefined : settlementWorkerUrl();
    if (url === undefined) return;
    const signal = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const workerData: SettlementWorkerData & { port: MessagePort } = {
      path: ledger.db.name,
      signal,
      port: port2,
    };
    this.#worker = new Worker(url, { workerData, transferList: [port2] });
    this.#port = port1;
    this.#answered = new Int32Array(signal);
    port1.on("message", (message: FromWorker) => this.#report(message));
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => {
      if (!this.#closed) this.#fail(new Error(`The settlement worker exited (code ${code}).`));
    });
    this.#idle();
  }

  /** Settlements waiting to be written (buffered, with the worker, or waiting to be tried again). */
  get pending(): number {
    let count = this.#buffer.length + this.#retrying.size;
    for (const batch of this.#inFlight.values()) count += batch.length;
    return count;
  }

  /** Whether the writes run on a worker thread. */
  get usesWorker(): boolean {
    return this.#worker !== undefined && this.#lost === undefined;
  }

  /**
   * Buffers a settlement. Throws INVALID_INPUT at once for a malformed one (the caller keeps its
   * hold then). When the debit exceeds `hold`, the excess is held too, even past the balance:
   * the request was served and will be billed.
   */
  enqueue(settlement: UsageSettlement, hold?: CreditHold): void {
    if (this.#closed) {
      throw new GbtError("INTERNAL", "The settlement queue is closed; this usage cannot be billed.", {
        details: { requestId: settlement.requestId },
      });
    }
    const parsed = parseUsageSettlement(settlement);
    const holds: CreditHold[] = hold === undefined ? [] : [hold];
    const reservations = this.options.reservations;
    const held = hold !== undefined && !hold.released && hold.accountId === parsed.accountId ? hold.micro : 0;
    if (reservations !== undefined && parsed.debitMicro > held) {
      holds.push(reservations.reserve(parsed.accountId, parsed.debitMicro - held, { overdraft: true }));
    }
    this.#buffer.push({ settlement: parsed, holds, attempts: 0 });
    this.#schedule();
  }

  /** Writes the buffer on the next turn (to the worker when it is free). */
  #schedule(): void {
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      if (this.usesWorker) {
        if (this.#inFlight.size === 0) this.#send();
      } else this.#writeHere();
    });
  }

  /**
   * Writes everything buffered now and returns once it is durable (or reported to `onError`, or
   * waiting to be tried again).
   */
  flushSync(): void {
    this.#unschedule();
    if (!this.usesWorker) {
      this.#writeHere();
      return;
    }
    this.#send();
    const answered = this.#answered as Int32Array;
    const port = this.#port as MessagePort;
    let waited = 0;
    while (this.#inFlight.size > 0 && this.#lost === undefined) {
      const message = receiveMessageOnPort(port);
      if (message !== undefined) {
        this.#report(message.message as FromWorker);
        continue;
      }
      const seen = Atomics.load(answered, 0);
      // Everything answered is in the port already: a further wait would be for nothing.
      if (seen >= this.#sent) continue;
      const started = Date.now();
      Atomics.wait(answered, 0, seen, 1_000);
      waited += Date.now() - started;
      if (waited > WORKER_STALL_MS) this.#fail(new Error("The settlement worker stopped answering."));
    }
  }

  /** Writes everything buffered; resolves when it is durable (or reported to `onError`). */
  async flush(): Promise<void> {
    this.#unschedule();
    if (!this.usesWorker) {
      this.#writeHere();
      return;
    }
    this.#send();
    if (this.#inFlight.size === 0) return;
    const upTo = this.#sent;
    await new Promise<void>((resolve) => this.#waiters.push({ upTo, resolve }));
  }

  /**
   * Flushes, refuses further settlements and lets the worker go. What still waits for a retry
   * stays in the journal, for the next start to settle.
   */
  close(): void {
    this.flushSync();
    this.#closed = true;
    for (const [queued, timer] of this.#retrying) {
      clearTimeout(timer);
      for (const hold of queued.holds) hold.release();
    }
    this.#retrying.clear();
    if (this.#worker !== undefined) {
      if (this.#lost === undefined) this.#port?.postMessage({ type: "close" } satisfies ToWorker);
      this.#port?.close();
      this.#worker.unref();
    }
  }

  #unschedule(): void {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
  }

  /** Hands the buffer to the worker as one batch. */
  #send(): void {
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    const id = ++this.#sent;
    this.#inFlight.set(id, batch);
    this.#worker?.ref();
    this.#port?.ref();
    const now = this.ledger.now;
    const settlements = batch.map(({ settlement }) =>
      settlement.createdAt === undefined ? { ...settlement, createdAt: now() } : settlement,
    );
    this.#port?.postMessage({ type: "batch", id, settlements } satisfies ToWorker);
  }

  /** The worker's answer for one batch. */
  #report(message: FromWorker): void {
    const batch = this.#inFlight.get(message.id);
    if (batch === undefined) return;
    this.#inFlight.delete(message.id);
    this.#settle(
      batch.map((queued, index): BatchOutcome => {
        const outcome = message.outcomes[index];
        if (outcome?.ok) return { ok: true, settlement: queued.settlement, settled: outcome.settled };
        const error = outcome
          ? fromWireError(outcome.error)
          : new Error("The settlement worker lost this one.");
        return { ok: false, settlement: queued.settlement, error };
      }),
      batch,
    );
    this.#afterReport();
  }

  #afterReport(): void {
    const done = this.#inFlight.size === 0 ? this.#sent : Math.min(...this.#inFlight.keys()) - 1;
    const ready = this.#waiters.filter((waiter) => waiter.upTo <= done);
    if (ready.length > 0) this.#waiters = this.#waiters.filter((waiter) => waiter.upTo > done);
    for (const waiter of ready) waiter.resolve();
    if (this.#inFlight.size === 0) {
      // What arrived while the last batch was with the worker goes now, as the next batch.
      if (this.#buffer.length > 0 && this.usesWorker) {
        this.#unschedule();
        this.#send();
      } else this.#idle();
    }
  }

  /** The worker is gone: what it held fails, and the queue writes on this thread from now on. */
  #fail(error: Error): void {
    if (this.#lost !== undefined) return;
    this.#lost = error;
    const batches = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const batch of batches) {
      this.#settle(
        batch.map(({ settlement }) => ({ ok: false, settlement, error })),
        batch,
      );
    }
    this.#port?.close();
    this.#worker?.unref();
    this.#afterReport();
    if (this.#buffer.length > 0) this.#scheduled ??= setImmediate(() => this.flushSync());
  }

  /** Nothing in flight: the worker must not keep the process alive. */
  #idle(): void {
    this.#worker?.unref();
    this.#port?.unref();
  }

  /** Writes the buffer on this thread's connection, in one SQLite transaction. */
  #writeHere(): void {
    if (this.#buffer.length === 0) return;
    const batch = this.#buffer;
    this.#buffer = [];
    let outcomes: BatchOutcome[];
    try {
      outcomes = this.ledger.settleBatch(batch.map((queued) => queued.settlement));
    } catch (error) {
      outcomes = batch.map(({ settlement }) => ({ ok: false, settlement, error }));
    }
    this.#settle(outcomes, batch);
  }

  #settle(outcomes: readonly BatchOutcome[], batch: readonly Queued[]): void {
    const done: string[] = [];
    outcomes.forEach((outcome, index) => {
      const queued = batch[index] as Queued;
      queued.attempts += 1;
      if (!outcome.ok && !alreadyInLedger(outcome.error) && !neverWritable(outcome.error)) {
        if (queued.attempts < this.#retry.attempts && !this.#closed) {
          this.#retryLater(queued, outcome.error);
          return;
        }
      }
      if (outcome.ok)
        this.options.reservations?.applySettled(outcome.settled.accountId, -outcome.settled.debitMicro);
      for (const hold of queued.holds) hold.release();
      if (outcome.ok) {
        done.push(outcome.settled.requestId);
        this.notify(() => this.options.onSettled?.(outcome.settled));
      } else {
        if (alreadyInLedger(outcome.error)) done.push(queued.settlement.requestId);
        else
          this.notify(() =>
            this.options.journal?.deadLetter(queued.settlement.requestId, queued.attempts, outcome.error),
          );
        this.notify(() => this.options.onError(outcome.error, outcome.settlement, queued.attempts));
      }
    });
    // A row left behind by a failed delete is found in the ledger at the next start and dropped then.
    if (done.length > 0) this.notify(() => this.options.journal?.settled(done));
  }

  /** Puts a failed write back in the buffer after a delay that doubles with each attempt. */
  #retryLater(queued: Queued, error: unknown): void {
    const { baseDelayMs, maxDelayMs } = this.#retry;
    const delayMs = Math.min(maxDelayMs, baseDelayMs * 2 ** (queued.attempts - 1));
    this.notify(() => this.options.onRetry?.(error, queued.settlement, queued.attempts, delayMs));
    const timer = setTimeout(() => {
      this.#retrying.delete(queued);
      this.#buffer.push(queued);
      this.#schedule();
    }, delayMs);
    this.#retrying.set(queued, timer);
  }

  // A throwing callback must not strand the rest of the batch's reports: it surfaces on its own.
  private notify(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
