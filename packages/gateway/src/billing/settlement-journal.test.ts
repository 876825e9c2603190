import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GbtError } from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountStore } from "../auth/accounts.js";
import { parseGatewayConfig } from "../gateway-config.js";
import { consumerAccount, type GatewayDatabase, openGatewayDatabase } from "../gateway-database.js";
import { createGatewayMetrics } from "../gateway-metrics.js";
import type { PoolInstance } from "../pool/pool-instance.js";
import { CreditHolds } from "./credit-holds.js";
import { type BatchOutcome, Ledger, type UsageSettlement } from "./ledger.js";
import { type CompletedRequest, ReceiptSettler } from "./receipt-settler.js";
import { openSettlementJournal, type SettlementJournal } from "./settlement-journal.js";
import { SettlementQueue, type SettlementQueueOptions } from "./settlement-queue.js";

const NODE = "0xAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa";
const NOW = 1_700_000_000_000;
const now = () => NOW;
const PRICE = { inputPerMillion: 1, outputPerMillion: 2 };

let dir: string;
let db: GatewayDatabase;
let ledger: Ledger;
let journal: SettlementJournal;
let accountId: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-journal-"));
  db = openGatewayDatabase(join(dir, "gateway.db"));
  ledger = new Ledger(db, now);
  journal = openSettlementJournal(dir, now);
  accountId = new AccountStore(db, now).createAccount({ name: "alice", initialMicro: 5_000_000 }).id;
});

afterEach(() => {
  journal.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A finished whole response without a receipt: billed from the gateway's own view of its usage. */
function completed(requestId: string): CompletedRequest {
  return {
    requestId,
    model: "m",
    stream: false,
    instance: { id: "inst_1", nodeAddress: NODE } as PoolInstance,
    state: "complete",
    relayedCompletionTokens: 0,
    generationMs: 1,
    durationMs: 2,
    receipt: null,
    wholeBody: Buffer.from(JSON.stringify({ usage: { prompt_tokens: 10, completion_tokens: 20 } })),
    maxTokens: 100,
    promptBound: 1_000,
    accountId,
    keyId: "key_1",
    price: PRICE,
  };
}

/** A gateway's billing half, as `startGatewayServer` composes it (without its worker thread). */
function billing(queueOptions: Partial<SettlementQueueOptions> = {}, onLedger: Ledger = ledger) {
  const reservations = new CreditHolds((id) => onLedger.balanceMicro(consumerAccount(id)));
  const errors: { error: unknown; settlement: UsageSettlement; attempts: number }[] = [];
  const queue = new SettlementQueue(onLedger, {
    reservations,
    journal,
    worker: false,
    onError: (error, settlement, attempts) => errors.push({ error, settlement, attempts }),
    ...queueOptions,
  });
  const settler = new ReceiptSettler({
    config: parseGatewayConfig({}),
    account: privateKeyToAccount(generatePrivateKey()),
    pool: { rampFactor: () => 1, switchPenalty: () => 1, activeCount: () => 5 },
    queue,
    journal,
    metrics: createGatewayMetrics(),
    logger: pino({ level: "silent" }),
    now,
  });
  return { reservations, errors, queue, settler };
}

const usageRows = (requestId: string) =>
  (db.prepare("SELECT COUNT(*) AS n FROM usage_records WHERE request_id = ?").get(requestId) as { n: number })
    .n;

describe("the settlement journal", () => {
  it("holds a served request as soon as it is handed over, before any settlement runs", () => {
    const { settler, reservations } = billing();
    settler.submit(completed("req_1"), reservations.reserve(accountId, 1_000));
    // A kill -9 here: the ledger has nothing, the journal's file has the request.
    expect(usageRows("req_1")).toBe(0);
    const other = openSettlementJournal(dir);
    try {
      expect(other.pending().map((p) => [p.requestId, p.viewPromptTokens, p.viewCompletionTokens])).toEqual([
        ["req_1", 10, 20],
      ]);
    } finally {
      other.close();
    }
  });

  it("drops a request's row once its ledger transaction is durable", async () => {
    const { settler, reservations } = billing();
    settler.submit(completed("req_1"), reservations.reserve(accountId, 1_000));
    await settler.idle();
    expect(usageRows("req_1")).toBe(1);
    expect(journal.pendingCount()).toBe(0);
    expect(reservations.heldMicro(accountId)).toBe(0);
  });

  it("settles at the next start, once, what a crash left in the journal", async () => {
    billing().settler.submit(completed("req_1"), new CreditHolds(() => 5_000_000).reserve(accountId, 1_000));
    billing().settler.submit(completed("req_2"), new CreditHolds(() => 5_000_000).reserve(accountId, 1_000));
    // The process died: nothing settled. The next start replays both, and only both.
    const restarted = billing();
    expect(await restarted.settler.replay()).toBe(2);
    expect([usageRows("req_1"), usageRows("req_2")]).toEqual([1, 1]);
    expect(journal.pendingCount()).toBe(0);
    expect(restarted.errors).toEqual([]);
    // A second start finds nothing to do.
    expect(await billing().settler.replay()).toBe(0);
    const debit = 5_000_000 - ledger.balanceMicro(consumerAccount(accountId));
    expect(debit).toBe(2 * 50);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("drops, without billing it twice, a row whose transaction landed just before the crash", async () => {
    const first = billing();
    first.settler.submit(completed("req_1"), first.reservations.reserve(accountId, 1_000));
    // The ledger transaction commits; the process dies before the journal's row is deleted.
    const [row] = journal.pending();
    ledger.settleUsage(await first.settler.settlementOf(row as NonNullable<typeof row>));
    const balance = ledger.balanceMicro(consumerAccount(accountId));
    const restarted = billing();
    expect(await restarted.settler.replay()).toBe(1);
    expect(usageRows("req_1")).toBe(1);
    expect(ledger.balanceMicro(consumerAccount(accountId))).toBe(balance);
    expect(journal.pendingCount()).toBe(0);
    expect(journal.deadLetters()).toEqual([]);
    expect(restarted.errors.map((e) => (e.error as GbtError).code)).toEqual(["ALREADY_EXISTS"]);
    expect(ledger.checkInvariants().ok).toBe(true);
  });
});

/** A ledger whose batches fail (a full disk, a locked file) the first `failures` times. */
class FailingLedger extends Ledger {
  constructor(
    private failures: number,
    database: GatewayDatabase,
  ) {
    super(database, now);
  }
  override settleBatch(settlements: readonly UsageSettlement[]): BatchOutcome[] {
    if (this.failures > 0) {
      this.failures -= 1;
      throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    }
    return super.settleBatch(settlements);
  }
}

describe("failed settlements", () => {
  const retry = { attempts: 3, baseDelayMs: 0 };
  const givenUp = (errors: unknown[], count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (errors.length >= count ? resolve() : setTimeout(check, 1));
      check();
    });

  it("are tried again, and land once when the fault clears", async () => {
    const failing = new FailingLedger(2, db);
    const { settler, reservations, queue, errors } = billing({ retry }, failing);
    const hold = reservations.reserve(accountId, 1_000);
    settler.submit(completed("req_1"), hold);
    await settler.idle();
    while (queue.pending > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(usageRows("req_1")).toBe(1);
    expect(errors).toEqual([]);
    expect(hold.released).toBe(true);
    expect(journal.pendingCount()).toBe(0);
    expect(journal.deadLetters()).toEqual([]);
  });

  it("land in the dead letters with their error after the last attempt, holding no credit", async () => {
    const retries: number[] = [];
    const { settler, reservations, queue, errors } = billing(
      { retry, onRetry: (_error, _s, attempt) => retries.push(attempt) },
      new FailingLedger(3, db),
    );
    const hold = reservations.reserve(accountId, 1_000);
    settler.submit(completed("req_1"), hold);
    // The credit stays held while the write is retried.
    await settler.idle();
    expect(hold.released).toBe(false);
    await givenUp(errors, 1);
    expect(retries).toEqual([1, 2]);
    expect(errors.map((e) => e.attempts)).toEqual([3]);
    expect(hold.released).toBe(true);
    expect(queue.pending).toBe(0);
    expect(usageRows("req_1")).toBe(0);
    expect(journal.pendingCount()).toBe(0);
    expect(journal.deadLetters()).toEqual([
      {
        requestId: "req_1",
        accountId,
        node: NODE,
        model: "m",
        servedAt: new Date(NOW).toISOString(),
        attempts: 3,
        error: { code: "SQLITE_FULL", message: "database or disk is full" },
        failedAt: new Date(NOW).toISOString(),
      },
    ]);
    // Re-queued, a dead letter is settled at the next start, once.
    expect(journal.requeueDeadLetters()).toEqual(["req_1"]);
    expect(journal.deadLetters()).toEqual([]);
    expect(await billing().settler.replay()).toBe(1);
    expect(usageRows("req_1")).toBe(1);
    expect(journal.pendingCount()).toBe(0);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("go to the dead letters at once when no retry can write them (an unknown account)", async () => {
    const { settler, reservations, errors } = billing({ retry });
    const request = { ...completed("req_1"), accountId: "acct_gone" };
    settler.submit(request, reservations.reserve(accountId, 1_000));
    await settler.idle();
    expect(errors.map((e) => [(e.error as GbtError).code, e.attempts])).toEqual([["NOT_FOUND", 1]]);
    expect(journal.deadLetters().map((d) => [d.requestId, d.error.code, d.attempts])).toEqual([
      ["req_1", "NOT_FOUND", 1],
    ]);
    expect(journal.pendingCount()).toBe(0);
  });
});

it("an unreadable journal row becomes a dead letter instead of stopping the start", async () => {
  journal.db
    .prepare("INSERT INTO pending_settlements (request_id, served_at, record) VALUES (?, ?, ?)")
    .run("req_bad", NOW, "{not json");
  expect(await billing().settler.replay()).toBe(0);
  expect(journal.deadLetters().map((d) => [d.requestId, d.error.code])).toEqual([["req_bad", "INTERNAL"]]);
});
