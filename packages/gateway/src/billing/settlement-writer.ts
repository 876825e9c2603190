/**
 * The write half of a usage settlement, shared by the main thread (`Ledger`) and the settlement
 * worker (its own connection to the same WAL file). Three prepared statements per settlement:
 * the usage record, the usage transaction and one multi-row insert of its non-zero entries.
 * Duplicates and unknown accounts are found by the constraints (usage_records' primary key,
 * ledger_transactions' UNIQUE request_id, the accounts foreign key), not by a SELECT first.
 * Imports nothing heavier than better-sqlite3's types, so that the worker starts fast.
 */
import { GbtError } from "@gbt/protocol";
import {
  consumerAccount,
  type GatewayDatabase,
  PLATFORM_ACCOUNT,
  providerAccount,
  SUSPENSE_ACCOUNT,
} from "../gateway-database.js";

/** A settlement as `parseUsageSettlement` returns it: already validated. */
export interface ParsedSettlement {
  requestId: string;
  accountId: string;
  keyId?: string | null | undefined;
  node: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  debitMicro: number;
  providerCreditMicro: number;
  receiptStatus: "valid" | "missing" | "invalid" | "mismatch";
  receiptJson?: string | null | undefined;
  gatewaySignature?: string | null | undefined;
  multipliers: Record<string, number>;
  createdAt?: number | undefined;
}

/** What a settlement wrote. */
export interface SettledUsage {
  requestId: string;
  accountId: string;
  transactionId: number;
  debitMicro: number;
  providerCreditMicro: number;
  platformCreditMicro: number;
  /** `provider:<address>` when the receipt was valid, else `suspense`. */
  creditedAccount: string;
}

export type WriteOutcome<S> =
  | { ok: true; settlement: S; settled: SettledUsage }
  | { ok: false; settlement: S; error: unknown };

export function alreadySettled(requestId: string): GbtError {
  return new GbtError("ALREADY_EXISTS", `Request ${requestId} was already settled.`, {
    details: { requestId },
    hint: "A request is billed once; this settlement was refused and nothing was written.",
  });
}

export function unknownAccount(accountId: string): GbtError {
  return new GbtError("NOT_FOUND", `No gateway account ${JSON.stringify(accountId)}.`, {
    details: { accountId },
    hint: "List accounts with `gbt gateway accounts list`.",
  });
}

const sqliteCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string"
    ? (error as { code: string }).code
    : undefined;

/** A refusal of one settlement (the others of its batch go on); anything else sinks the batch. */
export function isRefusal(error: unknown): boolean {
  return error instanceof GbtError && (error.code === "ALREADY_EXISTS" || error.code === "NOT_FOUND");
}

export class SettlementWriter {
  readonly #insertUsage;
  readonly #insertTransaction;
  readonly #deleteUsage;
  readonly #insertEntries;
  readonly #batch;

  constructor(
    private readonly db: GatewayDatabase,
    private readonly now: () => number = Date.now,
  ) {
    this.#insertUsage = db.prepare(
      `INSERT INTO usage_records (request_id, account_id, key_id, node, model, prompt_tokens, completion_tokens,
         debit, provider_credit, platform_credit, receipt_status, receipt_json, gateway_signature,
         multipliers_json, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertTransaction = db.prepare(
      "INSERT INTO ledger_transactions (kind, request_id, created_at, memo) VALUES ('usage', ?, ?, ?)",
    );
    this.#deleteUsage = db.prepare("DELETE FROM usage_records WHERE request_id = ?");
    // One statement per number of non-zero entries (1 to 3).
    this.#insertEntries = [1, 2, 3].map((rows) =>
      db.prepare(
        `INSERT INTO ledger_entries (transaction_id, account, amount) VALUES ${Array(rows).fill("(?, ?, ?)").join(", ")}`,
      ),
    );
    this.#batch = db.transaction(<S extends ParsedSettlement>(settlements: readonly S[]) =>
      settlements.map((settlement): WriteOutcome<S> => {
        try {
          return { ok: true, settlement, settled: this.write(settlement) };
        } catch (error) {
          // A refused settlement wrote nothing; any other error rolls the whole batch back.
          if (!isRefusal(error) || !db.inTransaction) throw error;
          return { ok: false, settlement, error };
        }
      }),
    );
  }

  /** Writes a batch in one IMMEDIATE transaction; refused settlements are reported, not thrown. */
  writeBatch<S extends ParsedSettlement>(settlements: readonly S[]): WriteOutcome<S>[] {
    if (settlements.length === 0) return [];
    return this.#batch.immediate(settlements) as WriteOutcome<S>[];
  }

  /**
   * Writes one settlement; must run inside a transaction. Throws ALREADY_EXISTS or NOT_FOUND
   * having written nothing; any other error leaves the transaction to be rolled back.
   */
  write(s: ParsedSettlement): SettledUsage {
    const platformCreditMicro = s.debitMicro - s.providerCreditMicro;
    const creditedAccount = s.receiptStatus === "valid" ? providerAccount(s.node) : SUSPENSE_ACCOUNT;
    const createdAt = s.createdAt ?? this.now();
    try {
      this.#insertUsage.run(
        s.requestId,
        s.accountId,
        s.keyId ?? null,
        s.node.toLowerCase(),
        s.model,
        s.promptTokens,
        s.completionTokens,
        s.debitMicro,
        s.providerCreditMicro,
        platformCreditMicro,
        s.receiptStatus,
        s.receiptJson ?? null,
        s.gatewaySignature ?? null,
        JSON.stringify(s.multipliers),
        createdAt,
      );
    } catch (error) {
      const code = sqliteCode(error);
      if (code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE")
        throw alreadySettled(s.requestId);
      if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") throw unknownAccount(s.accountId);
      throw error;
    }
    let transactionId: number;
    try {
      transactionId = Number(this.#insertTransaction.run(s.requestId, createdAt, s.model).lastInsertRowid);
    } catch (error) {
      // The request id was taken by a grant or adjustment: undo the usage record, refuse.
      if (sqliteCode(error) !== "SQLITE_CONSTRAINT_UNIQUE") throw error;
      this.#deleteUsage.run(s.requestId);
      throw alreadySettled(s.requestId);
    }
    const values: (string | number)[] = [];
    const push = (account: string, amount: number) => {
      if (amount !== 0) values.push(transactionId, account, amount);
    };
    push(consumerAccount(s.accountId), -s.debitMicro);
    push(creditedAccount, s.providerCreditMicro);
    push(PLATFORM_ACCOUNT, platformCreditMicro);
    if (values.length > 0) this.#insertEntries[values.length / 3 - 1]?.run(values);
    return {
      requestId: s.requestId,
      accountId: s.accountId,
      transactionId,
      debitMicro: s.debitMicro,
      providerCreditMicro: s.providerCreditMicro,
      platformCreditMicro,
      creditedAccount,
    };
  }

  /** The database this writer writes to. */
  get database(): GatewayDatabase {
    return this.db;
  }
}

/** An error as it crosses from the worker: a GbtError keeps its code, details and hint. */
export type WireError =
  | { gbt: true; code: string; message: string; details?: Record<string, unknown>; hint?: string }
  | { gbt: false; name: string; message: string; code?: string };

export function toWireError(error: unknown): WireError {
  if (error instanceof GbtError) {
    return {
      gbt: true,
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    };
  }
  const code = sqliteCode(error);
  if (error instanceof Error)
    return { gbt: false, name: error.name, message: error.message, ...(code ? { code } : {}) };
  return { gbt: false, name: "Error", message: String(error) };
}

export function fromWireError(wire: WireError): Error {
  if (wire.gbt) {
    return new GbtError(wire.code as ConstructorParameters<typeof GbtError>[0], wire.message, {
      ...(wire.details === undefined ? {} : { details: wire.details }),
      ...(wire.hint === undefined ? {} : { hint: wire.hint }),
    });
  }
  const error = new Error(wire.message) as Error & { code?: string };
  error.name = wire.name;
  if (wire.code !== undefined) error.code = wire.code;
  return error;
}

/** The messages between `SettlementQueue` and the settlement worker. */
export type ToWorker = { type: "batch"; id: number; settlements: ParsedSettlement[] } | { type: "close" };
export interface FromWorker {
  id: number;
  outcomes: ({ ok: true; settled: SettledUsage } | { ok: false; error: WireError })[];
}
export interface SettlementWorkerData {
  path: string;
  /** Int32Array[0]: how many batches the worker has answered (it notifies after each). */
  signal: SharedArrayBuffer;
}
