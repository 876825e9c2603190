/**
 * The double-entry ledger of the gateway. Every movement of micro-credits is one transaction
 * whose signed entries sum to zero; a balance is the sum of an account's entries. A served
 * request is settled once (its request id is unique): the consumer pays the debit, the provider
 * earns its credit (held in suspense when the node's receipt did not check out), and the
 * platform keeps the rest.
 *
 * Settlements leave the request path through `SettlementQueue` (settlement-queue.ts); reads
 * stay here, on the main connection.
 */
import { GbtError } from "@gbt/protocol";
import { z } from "zod";
import { consumerAccount, type GatewayDatabase, TREASURY_ACCOUNT } from "../gateway-database.js";
import { alreadySettled, type SettledUsage, SettlementWriter, unknownAccount } from "./settlement-writer.js";

export type { SettledUsage } from "./settlement-writer.js";

export type TransactionKind = "grant" | "usage" | "adjust";

/** How the node's usage receipt for a request checked out; anything but `valid` holds the provider's credit. */
export type ReceiptStatus = "valid" | "missing" | "invalid" | "mismatch";

/** One signed entry: negative debits `account`, positive credits it. */
export interface LedgerEntry {
  account: string;
  amountMicro: number;
}

export interface LedgerPosting {
  kind: TransactionKind;
  entries: readonly LedgerEntry[];
  /** Unique across the ledger when set: the same request is never posted twice. */
  requestId?: string | null;
  memo?: string | null;
  createdAt?: number;
}

const microAmount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const tokenCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const identifier = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

/** The facts of one served request, as the gateway settles it. */
export const usageSettlementSchema = z
  .object({
    requestId: identifier,
    accountId: identifier,
    keyId: identifier.nullable().optional(),
    /** The serving node's address. */
    node: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address"),
    model: z.string().min(1).max(256),
    promptTokens: tokenCount,
    completionTokens: tokenCount,
    debitMicro: microAmount,
    providerCreditMicro: microAmount,
    receiptStatus: z.enum(["valid", "missing", "invalid", "mismatch"]),
    receiptJson: z.string().max(65_536).nullable().optional(),
    gatewaySignature: z.string().max(1_024).nullable().optional(),
    /** The multipliers behind the provider credit (share, ramp, switch penalty, bounty…), kept for audit. */
    multipliers: z.record(z.string().max(64), z.number().finite()),
    createdAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .refine((s) => s.providerCreditMicro <= s.debitMicro, {
    message: "must not exceed debitMicro",
    path: ["providerCreditMicro"],
  });
export type UsageSettlement = z.input<typeof usageSettlementSchema>;

/** A usage record as stored. */
export interface UsageRecord {
  requestId: string;
  accountId: string;
  keyId: string | null;
  node: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  debitMicro: number;
  providerCreditMicro: number;
  platformCreditMicro: number;
  receiptStatus: ReceiptStatus;
  receiptJson: string | null;
  gatewaySignature: string | null;
  multipliers: Record<string, number>;
  createdAt: string;
}

/** A settled request as read back after the fact, in the order settled (`position`). */
export interface ScannedUsage {
  /** Grows with each settled request; pass the last one seen to `usageAfter` to go on from there. */
  position: number;
  requestId: string;
  node: string;
  completionTokens: number;
  receiptJson: string | null;
  receiptStatus: ReceiptStatus;
}

/** A node's earnings: every credit ever posted to its provider account (suspense is not earned). */
export interface ProviderEarning {
  node: `0x${string}`;
  earnedMicro: number;
}

/** The ledger's self-check: `ok` when every list is empty and the total is zero. */
export interface InvariantReport {
  ok: boolean;
  /** The sum of every entry; zero in a balanced ledger. */
  totalMicro: number;
  unbalancedTransactions: number[];
  /** Consumer account ids whose balance is below zero. */
  negativeConsumers: string[];
  duplicateRequestIds: string[];
  /** Usage records without a usage transaction that debits exactly their amount, or whose split does not add up. */
  mismatchedUsage: string[];
}

/** The outcome of one settlement of a batch. */
export type BatchOutcome =
  | { ok: true; settlement: UsageSettlement; settled: SettledUsage }
  | { ok: false; settlement: UsageSettlement; error: unknown };

interface UsageRow {
  request_id: string;
  account_id: string;
  key_id: string | null;
  node: string;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  debit: number;
  provider_credit: number;
  platform_credit: number;
  receipt_status: ReceiptStatus;
  receipt_json: string | null;
  gateway_signature: string | null;
  multipliers_json: string;
  created_at: number;
}

const toUsageRecord = (row: UsageRow): UsageRecord => ({
  requestId: row.request_id,
  accountId: row.account_id,
  keyId: row.key_id,
  node: row.node,
  model: row.model,
  promptTokens: row.prompt_tokens,
  completionTokens: row.completion_tokens,
  debitMicro: row.debit,
  providerCreditMicro: row.provider_credit,
  platformCreditMicro: row.platform_credit,
  receiptStatus: row.receipt_status,
  receiptJson: row.receipt_json,
  gatewaySignature: row.gateway_signature,
  multipliers: JSON.parse(row.multipliers_json) as Record<string, number>,
  createdAt: new Date(row.created_at).toISOString(),
});

/** Parses a settlement at the ledger's boundary; INVALID_INPUT naming the first bad field. */
export function parseUsageSettlement(settlement: unknown): z.output<typeof usageSettlementSchema> {
  const parsed = usageSettlementSchema.safeParse(settlement);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
  const first = issues[0];
  const requestId =
    typeof settlement === "object" && settlement !== null
      ? (settlement as { requestId?: unknown }).requestId
      : undefined;
  return invalidSettlement(
    `Invalid usage settlement: ${first ? `${first.path || "(root)"} ${first.message}` : "unreadable"}.`,
    { requestId: typeof requestId === "string" ? requestId : null, issues },
  );
}

function invalidSettlement(message: string, details: Record<string, unknown>): never {
  throw new GbtError("INVALID_INPUT", message, {
    details,
    hint: "This is a gateway bug: settlements are built from metered usage. Nothing was written.",
  });
}

export class Ledger {
  private readonly statements;
  private readonly postInTransaction;
  private readonly settleInTransaction;
  private readonly writer: SettlementWriter;

  constructor(
    readonly db: GatewayDatabase,
    /** The clock behind `createdAt` when a posting or settlement has none. */
    readonly now: () => number = Date.now,
  ) {
    this.statements = {
      balance: db.prepare("SELECT COALESCE(SUM(amount), 0) AS balance FROM ledger_entries WHERE account = ?"),
      balances: db.prepare(
        "SELECT account, SUM(amount) AS balance FROM ledger_entries GROUP BY account ORDER BY account",
      ),
      insertTransaction: db.prepare(
        "INSERT INTO ledger_transactions (kind, request_id, created_at, memo) VALUES (?, ?, ?, ?)",
      ),
      insertEntry: db.prepare(
        "INSERT INTO ledger_entries (transaction_id, account, amount) VALUES (?, ?, ?)",
      ),
      transactionSeen: db.prepare("SELECT 1 FROM ledger_transactions WHERE request_id = ?"),
      accountExists: db.prepare("SELECT 1 FROM accounts WHERE id = ?"),
      usage: db.prepare(
        "SELECT * FROM usage_records WHERE account_id = ? ORDER BY created_at DESC, request_id DESC LIMIT ?",
      ),
      usageAfter: db.prepare(
        `SELECT rowid, request_id, node, completion_tokens, receipt_json, receipt_status FROM usage_records
         WHERE rowid > ? ORDER BY rowid LIMIT ?`,
      ),
      providerEarnings: db.prepare(
        `SELECT account, SUM(amount) AS earned FROM ledger_entries
         WHERE account LIKE 'provider:0x%' AND amount > 0
         GROUP BY account ORDER BY account`,
      ),
    };
    this.postInTransaction = db.transaction((posting: LedgerPosting) => this.insertPosting(posting));
    this.writer = new SettlementWriter(db, now);
    this.settleInTransaction = db.transaction((s: z.output<typeof usageSettlementSchema>) =>
      this.writer.write(s),
    );
  }

  /** The balance of a ledger account (`consumer:acct_…`, `provider:0x…`, `platform`…), in micro-credits. */
  balanceMicro(ledgerAccount: string): number {
    return (this.statements.balance.get(ledgerAccount) as { balance: number }).balance;
  }

  /** Every ledger account with entries, and its balance. */
  balances(): { account: string; balanceMicro: number }[] {
    return (this.statements.balances.all() as { account: string; balance: number }[]).map((row) => ({
      account: row.account,
      balanceMicro: row.balance,
    }));
  }

  /**
   * Posts one balanced transaction (zero-amount entries are skipped) and returns its id.
   * INVALID_INPUT when the entries do not sum to zero; ALREADY_EXISTS when the request id was posted.
   */
  post(posting: LedgerPosting): number {
    let sum = 0;
    for (const entry of posting.entries) {
      if (!Number.isSafeInteger(entry.amountMicro)) {
        throw new GbtError("INVALID_INPUT", `Ledger amount for ${entry.account} must be an integer.`, {
          details: { account: entry.account, amountMicro: entry.amountMicro },
        });
      }
      sum += entry.amountMicro;
    }
    if (sum !== 0) {
      throw new GbtError("INVALID_INPUT", `A ledger transaction must sum to zero; this one sums to ${sum}.`, {
        details: { kind: posting.kind, sumMicro: sum },
        hint: "This is a gateway bug; nothing was written.",
      });
    }
    return this.postInTransaction(posting);
  }

  /**
   * Settles one request in one SQLite transaction: its usage record, and consumer −debit,
   * provider (or suspense) +providerCredit, platform +(debit − providerCredit).
   * Nothing is written when it throws: INVALID_INPUT (bad amounts), NOT_FOUND (unknown account),
   * ALREADY_EXISTS (the request was settled before).
   */
  settleUsage(settlement: UsageSettlement): SettledUsage {
    return this.settleInTransaction.immediate(parseUsageSettlement(settlement));
  }

  /**
   * Settles many requests in one SQLite transaction, each in its own savepoint, so that a refused
   * one (duplicate, unknown account) does not sink the others. Throws only when the batch as a
   * whole could not be written, and then nothing was.
   */
  settleBatch(settlements: readonly UsageSettlement[]): BatchOutcome[] {
    // Entries not yet parsed are refused one by one, as the writer would refuse a duplicate.
    const parsed = settlements.map((settlement) => {
      try {
        return { settlement, parsed: parseUsageSettlement(settlement) };
      } catch (error) {
        return { settlement, error };
      }
    });
    const valid = parsed.flatMap((entry) => (entry.parsed === undefined ? [] : [entry.parsed]));
    const written = this.writer.writeBatch(valid);
    let next = 0;
    return parsed.map((entry): BatchOutcome => {
      if (entry.parsed === undefined) return { ok: false, settlement: entry.settlement, error: entry.error };
      const outcome = written[next++] as (typeof written)[number];
      return outcome.ok
        ? { ok: true, settlement: entry.settlement, settled: outcome.settled }
        : { ok: false, settlement: entry.settlement, error: outcome.error };
    });
  }

  /**
   * Moves credits between the treasury and a consumer (positive: a top-up; negative: a claw-back)
   * as an `adjust` transaction. Refuses to take a consumer below zero (INSUFFICIENT_FUNDS).
   * Returns the new balance. A process with cached balances must apply the delta itself.
   */
  adjustConsumer(accountId: string, deltaMicro: number, memo: string | null = null): number {
    if (!Number.isSafeInteger(deltaMicro) || deltaMicro === 0) {
      throw new GbtError("INVALID_INPUT", "An adjustment is a non-zero integer of micro-credits.", {
        details: { deltaMicro },
      });
    }
    return this.db
      .transaction(() => {
        this.requireAccount(accountId);
        const account = consumerAccount(accountId);
        const balance = this.balanceMicro(account);
        if (balance + deltaMicro < 0) {
          throw new GbtError(
            "INSUFFICIENT_FUNDS",
            `Account ${accountId} holds less than the adjustment takes.`,
            {
              details: { accountId, balanceMicro: balance, deltaMicro },
              hint: "Take at most the account's balance.",
            },
          );
        }
        this.post({
          kind: "adjust",
          memo,
          entries: [
            { account: TREASURY_ACCOUNT, amountMicro: -deltaMicro },
            { account, amountMicro: deltaMicro },
          ],
        });
        return balance + deltaMicro;
      })
      .immediate();
  }

  /** The account's usage records, newest first. */
  usage(accountId: string, limit = 100): UsageRecord[] {
    if (!(Number.isSafeInteger(limit) && limit >= 1)) {
      throw new GbtError("INVALID_INPUT", `limit must be an integer ≥ 1, got ${String(limit)}.`, {
        details: { limit },
      });
    }
    return (this.statements.usage.all(accountId, limit) as UsageRow[]).map(toUsageRecord);
  }

  /** Settled requests after `position` (0: from the first), oldest first, at most `limit`. */
  usageAfter(position: number, limit: number): ScannedUsage[] {
    const rows = this.statements.usageAfter.all(position, limit) as {
      rowid: number;
      request_id: string;
      node: string;
      completion_tokens: number;
      receipt_json: string | null;
      receipt_status: ReceiptStatus;
    }[];
    return rows.map((row) => ({
      position: row.rowid,
      requestId: row.request_id,
      node: row.node,
      completionTokens: row.completion_tokens,
      receiptJson: row.receipt_json,
      receiptStatus: row.receipt_status,
    }));
  }

  /** Every node's earnings so far, by lower-case address: what settlement posts on chain, cumulatively. */
  providerEarnings(): ProviderEarning[] {
    return (this.statements.providerEarnings.all() as { account: string; earned: number }[]).map((row) => ({
      node: row.account.slice("provider:".length) as `0x${string}`,
      earnedMicro: row.earned,
    }));
  }

  /** Audits the whole ledger. Reads every entry: for tests, `gbt gateway` doctor-style checks, not per request. */
  checkInvariants(): InvariantReport {
    const db = this.db;
    return db.transaction(() => {
      const { total } = db.prepare("SELECT COALESCE(SUM(amount), 0) AS total FROM ledger_entries").get() as {
        total: number;
      };
      const unbalancedTransactions = (
        db
          .prepare(
            "SELECT transaction_id AS id FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount) <> 0 ORDER BY 1",
          )
          .all() as { id: number }[]
      ).map((row) => row.id);
      const negativeConsumers = (
        db
          .prepare(
            `SELECT substr(account, 10) AS id FROM ledger_entries WHERE account LIKE 'consumer:%'
             GROUP BY account HAVING SUM(amount) < 0 ORDER BY 1`,
          )
          .all() as { id: string }[]
      ).map((row) => row.id);
      const duplicateRequestIds = (
        db
          .prepare(
            `SELECT request_id AS id FROM ledger_transactions WHERE request_id IS NOT NULL
             GROUP BY request_id HAVING COUNT(*) > 1 ORDER BY 1`,
          )
          .all() as { id: string }[]
      ).map((row) => row.id);
      const mismatchedUsage = (
        db
          .prepare(
            `SELECT u.request_id AS id FROM usage_records u
               LEFT JOIN ledger_transactions t ON t.request_id = u.request_id AND t.kind = 'usage'
             WHERE t.id IS NULL
                OR u.provider_credit + u.platform_credit <> u.debit
                OR -u.debit <> (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
                                WHERE e.transaction_id = t.id AND e.account = 'consumer:' || u.account_id)
             ORDER BY 1`,
          )
          .all() as { id: string }[]
      ).map((row) => row.id);
      return {
        ok:
          total === 0 &&
          unbalancedTransactions.length === 0 &&
          negativeConsumers.length === 0 &&
          duplicateRequestIds.length === 0 &&
          mismatchedUsage.length === 0,
        totalMicro: total,
        unbalancedTransactions,
        negativeConsumers,
        duplicateRequestIds,
        mismatchedUsage,
      };
    })();
  }

  private insertPosting(posting: LedgerPosting): number {
    const requestId = posting.requestId ?? null;
    if (requestId !== null && this.statements.transactionSeen.get(requestId) !== undefined) {
      throw alreadySettled(requestId);
    }
    const { lastInsertRowid } = this.statements.insertTransaction.run(
      posting.kind,
      requestId,
      posting.createdAt ?? this.now(),
      posting.memo ?? null,
    );
    const transactionId = Number(lastInsertRowid);
    for (const entry of posting.entries) {
      if (entry.amountMicro !== 0)
        this.statements.insertEntry.run(transactionId, entry.account, entry.amountMicro);
    }
    return transactionId;
  }

  private requireAccount(accountId: string): void {
    if (this.statements.accountExists.get(accountId) === undefined) throw unknownAccount(accountId);
  }
}
