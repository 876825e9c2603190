import { appendFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
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
import {
  listDeadLetters,
  requeueDeadLetters,
  SettlementJournal,
  settlementJournalDir,
} from "./settlement-journal.js";
import { SettlementQueue, type SettlementQueueOptions } from "./settlement-queue.js";

const NODE = "0xAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa";
const NOW = 1_700_000_000_000;
const now = () => NOW;
const PRICE = { inputPerMillion: 1, outputPerMillion: 2 };

let dir: string;
let db: GatewayDatabase;
let ledger: Ledger;
let accountId: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-journal-"));
  db = openGatewayDatabase(join(dir, "gateway.db"));
  ledger = new Ledger(db, now);
  accountId = new AccountStore(db, now).createAccount({ name: "alice", initialMicro: 5_000_000 }).id;
});

/** The journal as a (re)started gateway opens it. */
const openJournal = () => new SettlementJournal(db, { dir: settlementJournalDir(dir), now });

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A finished whole response without a receipt: billed from the gateway's own view of its usage. */
function completed(requestId: string): CompletedRequest {
  return {
    route: "chat",
    requestId,
    model: "m",
    stream: false,
    instance: { id: "inst_1", nodeAddress: NODE } as PoolInstance,
    state: "complete",
    relayedCompletionTokens: 0,
    generationMs: 1,
    durationMs: 2,
    receipt: null,
    // 20 tokens of text delivered (a whole answer bills at most a token per byte of text).
    wholeBody: Buffer.from(
      JSON.stringify({
        choices: [{ message: { role: "assistant", content: "t".repeat(20) } }],
        usage: { prompt_tokens: 10, completion_tokens: 20 },
      }),
    ),
    maxTokens: 100,
    promptBound: 1_000,
    accountId,
    keyId: "key_1",
    price: PRICE,
  };
}

/** A gateway's billing half, as `startGatewayServer` composes it (without its worker thread). */
function billing(
  queueOptions: Partial<SettlementQueueOptions> = {},
  onLedger: Ledger = ledger,
  journal: SettlementJournal = openJournal(),
) {
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
  return { reservations, errors, queue, settler, journal };
}

const usageRows = (requestId: string) =>
  (db.prepare("SELECT COUNT(*) AS n FROM usage_records WHERE request_id = ?").get(requestId) as { n: number })
    .n;

/** What the journal's files hold, read as the next start reads them. */
function journalled(): string[] {
  const next = openJournal();
  try {
    return next.recover().map((p) => p.requestId);
  } finally {
    next.close();
  }
}

describe("the settlement journal", () => {
  it("holds a served request as soon as it is handed over, before any settlement runs", () => {
    const { settler, reservations } = billing();
    settler.submit(completed("req_1"), reservations.reserve(accountId, 1_000));
    // A kill -9 here: the ledger has nothing, the journal's file has the request.
    expect(usageRows("req_1")).toBe(0);
    const next = openJournal();
    expect(next.recover().map((p) => [p.requestId, p.viewPromptTokens, p.viewCompletionTokens])).toEqual([
      ["req_1", 10, 20],
    ]);
    next.close();
  });

  it("lets go of a request once its ledger transaction is durable, leaving no file behind", async () => {
    const { settler, reservations, journal } = billing();
    settler.submit(completed("req_1"), reservations.reserve(accountId, 1_000));
    await settler.idle();
    expect(usageRows("req_1")).toBe(1);
    expect(journal.pendingCount).toBe(0);
    expect(reservations.heldMicro(accountId)).toBe(0);
    journal.close();
    expect(readdirSync(settlementJournalDir(dir))).toEqual([]);
  });

  it("settles at the next start, once, what a crash left in the journal", async () => {
    billing().settler.submit(completed("req_1"), new CreditHolds(() => 5_000_000).reserve(accountId, 1_000));
    billing().settler.submit(completed("req_2"), new CreditHolds(() => 5_000_000).reserve(accountId, 1_000));
    // The processes died: nothing settled. The next start replays both, and only both.
    const restarted = billing();
    expect(await restarted.settler.replay()).toBe(2);
    expect([usageRows("req_1"), usageRows("req_2")]).toEqual([1, 1]);
    expect(restarted.journal.pendingCount).toBe(0);
    expect(restarted.errors).toEqual([]);
    // The segments are gone: a second start finds nothing to do.
    expect(await billing().settler.replay()).toBe(0);
    expect(5_000_000 - ledger.balanceMicro(consumerAccount(accountId))).toBe(2 * 50);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("drops, without billing it twice, a request whose transaction landed just before the crash", async () => {
    const first = billing();
    first.settler.submit(completed("req_1"), first.reservations.reserve(accountId, 1_000));
    // The ledger transaction commits; the process dies before the journal lets go of the line.
    const [row] = openJournal().recover();
    ledger.settleUsage(await first.settler.settlementOf(row as NonNullable<typeof row>));
    const balance = ledger.balanceMicro(consumerAccount(accountId));
    const restarted = billing();
    expect(await restarted.settler.replay()).toBe(1);
    expect(usageRows("req_1")).toBe(1);
    expect(ledger.balanceMicro(consumerAccount(accountId))).toBe(balance);
    expect(restarted.journal.pendingCount).toBe(0);
    expect(listDeadLetters(db)).toEqual([]);
    expect(restarted.errors.map((e) => (e.error as GbtError).code)).toEqual(["ALREADY_EXISTS"]);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("skips a line cut by the crash and makes an unreadable one a dead letter", async () => {
    const { settler, reservations } = billing();
    settler.submit(completed("req_1"), reservations.reserve(accountId, 1_000));
    const [segment] = readdirSync(settlementJournalDir(dir));
    const path = join(settlementJournalDir(dir), segment as string);
    appendFileSync(path, '{"requestId":"req_bad"}\n{"requestId":"req_cut","acc');
    expect(journalled()).toEqual(["req_1"]);
    expect(listDeadLetters(db).map((d) => [d.requestId, d.error.code])).toEqual([["req_bad", "INTERNAL"]]);
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
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise((resolve) => setTimeout(resolve, 1));
  };

  it("are tried again, and land once when the fault clears", async () => {
    const { settler, reservations, queue, errors, journal } = billing({ retry }, new FailingLedger(2, db));
    const hold = reservations.reserve(accountId, 1_000);
    settler.submit(completed("req_1"), hold);
    await settler.idle();
    await until(() => queue.pending === 0);
    expect(usageRows("req_1")).toBe(1);
    expect(errors).toEqual([]);
    expect(hold.released).toBe(true);
    expect(journal.pendingCount).toBe(0);
    expect(listDeadLetters(db)).toEqual([]);
  });

  it("land in the dead letters with their error after the last attempt, holding no credit", async () => {
    const retries: number[] = [];
    const { settler, reservations, queue, errors, journal } = billing(
      { retry, onRetry: (_error, _s, attempt) => retries.push(attempt) },
      new FailingLedger(3, db),
    );
    const hold = reservations.reserve(accountId, 1_000);
    settler.submit(completed("req_1"), hold);
    // The credit stays held while the write is retried.
    await settler.idle();
    expect(hold.released).toBe(false);
    await until(() => errors.length > 0);
    expect(retries).toEqual([1, 2]);
    expect(errors.map((e) => e.attempts)).toEqual([3]);
    expect(hold.released).toBe(true);
    expect(queue.pending).toBe(0);
    expect(usageRows("req_1")).toBe(0);
    expect(journal.pendingCount).toBe(0);
    const letter = {
      requestId: "req_1",
      accountId,
      node: NODE,
      model: "m",
      servedAt: new Date(NOW).toISOString(),
      attempts: 3,
      error: { code: "SQLITE_FULL", message: "database or disk is full" },
      failedAt: new Date(NOW).toISOString(),
      requeuedAt: null,
    };
    expect(listDeadLetters(db)).toEqual([letter]);
    // Given up, it is not replayed at the next start.
    journal.close();
    expect(journalled()).toEqual([]);
    // Re-queued, it is settled at the next start, once.
    expect(requeueDeadLetters(db, undefined, now)).toEqual(["req_1"]);
    expect(listDeadLetters(db)).toEqual([{ ...letter, requeuedAt: new Date(NOW).toISOString() }]);
    const restarted = billing();
    expect(await restarted.settler.replay()).toBe(1);
    expect(usageRows("req_1")).toBe(1);
    expect(listDeadLetters(db)).toEqual([]);
    expect(restarted.journal.pendingCount).toBe(0);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("go to the dead letters at once when no retry can write them (an unknown account)", async () => {
    const { settler, reservations, errors, journal } = billing({ retry });
    settler.submit({ ...completed("req_1"), accountId: "acct_gone" }, reservations.reserve(accountId, 1_000));
    await settler.idle();
    expect(errors.map((e) => [(e.error as GbtError).code, e.attempts])).toEqual([["NOT_FOUND", 1]]);
    expect(listDeadLetters(db).map((d) => [d.requestId, d.error.code, d.attempts])).toEqual([
      ["req_1", "NOT_FOUND", 1],
    ]);
    expect(journal.pendingCount).toBe(0);
  });
});
