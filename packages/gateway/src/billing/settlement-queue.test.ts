import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GbtError, isGbtError, seededRandom } from "@gbt/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountStore } from "../auth/accounts.js";
import {
  consumerAccount,
  type GatewayDatabase,
  openGatewayDatabase,
  PLATFORM_ACCOUNT,
  SUSPENSE_ACCOUNT,
} from "../gateway-database.js";
import { type CreditHold, CreditHolds } from "./credit-holds.js";
import { Ledger, type UsageSettlement } from "./ledger.js";
import { costMicro, providerCreditMicro } from "./pricing.js";
import { SettlementQueue } from "./settlement-queue.js";
import type { SettledUsage } from "./settlement-writer.js";

const NODE_A = "0xAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa";
const NODE_B = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

let dir: string;
let db: GatewayDatabase;
let accounts: AccountStore;
let ledger: Ledger;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-ledger-"));
  db = openGatewayDatabase(join(dir, "gateway.db"));
  accounts = new AccountStore(db, () => 1_700_000_000_000);
  ledger = new Ledger(db, () => 1_700_000_000_000);
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function settlement(accountId: string, overrides: Partial<UsageSettlement> = {}): UsageSettlement {
  return {
    requestId: "req_1",
    accountId,
    keyId: "key_1",
    node: NODE_A,
    model: "llama3.2:3b",
    promptTokens: 100,
    completionTokens: 50,
    debitMicro: 1_000,
    providerCreditMicro: 800,
    receiptStatus: "valid",
    multipliers: { providerShare: 0.8, rampFactor: 1, switchPenalty: 1, bounty: 1 },
    ...overrides,
  };
}

/** Everything the ledger holds, to show that a refused settlement wrote nothing. */
function snapshot() {
  return {
    transactions: db.prepare("SELECT * FROM ledger_transactions ORDER BY id").all(),
    entries: db.prepare("SELECT * FROM ledger_entries ORDER BY rowid").all(),
    usage: db.prepare("SELECT * FROM usage_records ORDER BY request_id").all(),
  };
}

// With the worker (the compiled dist/billing/settlement-worker.js, built by `tsc -b`) and without.
describe.each([
  { worker: false, name: "on the main thread" },
  { worker: true, name: "on the settlement worker" },
])("SettlementQueue $name", ({ worker }) => {
  function setup(initialMicro = 5_000_000) {
    const { id } = accounts.createAccount({ name: "alice", initialMicro });
    const reservations = new CreditHolds((accountId) => ledger.balanceMicro(consumerAccount(accountId)));
    const errors: { error: unknown; settlement: UsageSettlement }[] = [];
    const settled: SettledUsage[] = [];
    const queue = new SettlementQueue(ledger, {
      reservations,
      onError: (error, s) => errors.push({ error, settlement: s }),
      onSettled: (s) => settled.push(s),
      worker,
    });
    return { id, reservations, errors, settled, queue };
  }

  it("writes nothing on the request path, then the whole batch on the next tick", async () => {
    const { id, queue, settled } = setup();
    expect(queue.usesWorker).toBe(worker);
    for (let i = 0; i < 50; i++) queue.enqueue(settlement(id, { requestId: `req_${i}` }));
    expect(queue.pending).toBe(50);
    expect(snapshot().usage).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    // The worker has the batch now; it is durable once flush resolves.
    if (worker) await queue.flush();
    expect(queue.pending).toBe(0);
    expect(settled).toHaveLength(50);
    expect(ledger.balanceMicro(consumerAccount(id))).toBe(5_000_000 - 50_000);
  });

  it("keeps a duplicate inside a batch from sinking the others", async () => {
    const { id, queue, errors, settled } = setup();
    queue.enqueue(settlement(id, { requestId: "a" }));
    queue.enqueue(settlement(id, { requestId: "b" }));
    queue.enqueue(settlement(id, { requestId: "a", debitMicro: 7, providerCreditMicro: 0 }));
    queue.enqueue(settlement("acct_gone", { requestId: "c" }));
    queue.enqueue(settlement(id, { requestId: "d" }));
    await queue.flush();
    expect(settled.map((s) => s.requestId)).toEqual(["a", "b", "d"]);
    expect(errors.map((e) => [e.settlement.requestId, (e.error as GbtError).code])).toEqual([
      ["a", "ALREADY_EXISTS"],
      ["c", "NOT_FOUND"],
    ]);
    expect(ledger.balanceMicro(consumerAccount(id))).toBe(5_000_000 - 3_000);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("keeps the hold until the debit is durable, then hands the cache the settled balance", async () => {
    const { id, queue, reservations } = setup(10_000);
    const hold = reservations.reserve(id, 4_000);
    queue.enqueue(settlement(id, { debitMicro: 3_000, providerCreditMicro: 2_000 }), hold);
    // Not yet written: the hold still covers it.
    expect(hold.released).toBe(false);
    expect(reservations.available(id)).toBe(6_000);
    queue.flushSync();
    expect(hold.released).toBe(true);
    expect(reservations.available(id)).toBe(7_000);
    expect(reservations.settledMicro(id)).toBe(ledger.balanceMicro(consumerAccount(id)));
  });

  it("holds a debit larger than its hold until it lands, even past the balance", () => {
    const { id, queue, reservations } = setup(1_000);
    const hold = reservations.reserve(id, 500);
    queue.enqueue(settlement(id, { debitMicro: 1_200, providerCreditMicro: 0 }), hold);
    expect(reservations.available(id)).toBe(-200);
    expect(() => reservations.reserve(id, 1)).toThrow(
      expect.objectContaining({ code: "INSUFFICIENT_FUNDS" }),
    );
    queue.flushSync();
    expect(reservations.heldMicro(id)).toBe(0);
    expect(reservations.available(id)).toBe(-200);
    expect(ledger.checkInvariants().negativeConsumers).toEqual([id]);
  });

  it("rejects a malformed settlement at enqueue, and refuses work once closed", async () => {
    const { id, queue, reservations } = setup();
    const hold = reservations.reserve(id, 10);
    expect(() => queue.enqueue(settlement(id, { providerCreditMicro: 2_000 }), hold)).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }),
    );
    expect(hold.released).toBe(false); // still the caller's
    expect(queue.pending).toBe(0);
    queue.enqueue(settlement(id));
    queue.close();
    expect(snapshot().usage).toHaveLength(1);
    expect(() => queue.enqueue(settlement(id, { requestId: "late" }))).toThrow(/closed/);
  });

  it("reports each settlement once its batch is durable, batches arriving while one is in flight", async () => {
    const { id, queue, reservations, settled, errors } = setup(100_000);
    const holds = Array.from({ length: 20 }, () => reservations.reserve(id, 2_000));
    for (let i = 0; i < 10; i++) queue.enqueue(settlement(id, { requestId: `x_${i}` }), holds[i]);
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 10; i < 20; i++) queue.enqueue(settlement(id, { requestId: `x_${i}` }), holds[i]);
    queue.enqueue(settlement(id, { requestId: "x_3" }));
    const flushed = queue.flush();
    await flushed;
    expect(queue.pending).toBe(0);
    expect(holds.every((hold) => hold?.released)).toBe(true);
    expect(settled.map((s) => s.requestId)).toEqual(Array.from({ length: 20 }, (_, i) => `x_${i}`));
    expect(errors.map((e) => [e.settlement.requestId, (e.error as GbtError).code])).toEqual([
      ["x_3", "ALREADY_EXISTS"],
    ]);
    expect(errors[0]?.error).toBeInstanceOf(GbtError);
    expect(reservations.settledMicro(id)).toBe(ledger.balanceMicro(consumerAccount(id)));
    expect(reservations.heldMicro(id)).toBe(0);
    await queue.flush(); // nothing pending: resolves at once
    queue.close();
    expect(ledger.checkInvariants().ok).toBe(true);
  });
});

describe.each([{ worker: false }, { worker: true }])(
  "ledger under a randomized workload (worker: $worker)",
  ({ worker }) => {
    it("stays balanced, never overdraws a consumer, and pays out exactly what it debits", async () => {
      const random = seededRandom(20_240_601);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
      const int = (max: number) => Math.floor(random() * (max + 1));

      const reservations = new CreditHolds((id) => ledger.balanceMicro(consumerAccount(id)));
      const refused = { duplicate: 0, invalid: 0, funds: 0, other: 0 };
      const queue = new SettlementQueue(ledger, {
        reservations,
        onError: (error) => {
          if (isGbtError(error, "ALREADY_EXISTS")) refused.duplicate++;
          else refused.other++;
        },
        worker,
      });
      const ids: string[] = [];
      const open: CreditHold[] = [];
      const settledIds: string[] = [];
      const price = { inputPerMillion: 20, outputPerMillion: 80 };
      let requestCounter = 0;

      for (let op = 0; op < 2_000; op++) {
        let roll = random();
        // Completing or abandoning a request needs one in flight; otherwise admit one.
        if (open.length === 0 && ((roll >= 0.5 && roll < 0.78) || (roll >= 0.88 && roll < 0.95))) roll = 0.3;
        if (ids.length === 0 || roll < 0.04) {
          ids.push(
            accounts.createAccount({
              name: `user ${op}`,
              initialMicro: pick([0, 50_000, 1_000_000, 5_000_000]),
            }).id,
          );
        } else if (roll < 0.5) {
          // Admission: hold the worst case (the prompt plus max_tokens).
          const promptTokens = int(2_000);
          const maxTokens = int(1_000);
          try {
            const hold = reservations.reserve(pick(ids), costMicro(price, promptTokens, maxTokens));
            open.push(hold);
          } catch (error) {
            if (isGbtError(error, "INSUFFICIENT_FUNDS")) refused.funds++;
            else throw error;
          }
        } else if (roll < 0.78) {
          // Completion: bill the actual usage (at most the hold) and settle it with the hold.
          const hold = open.splice(int(open.length - 1), 1)[0] as CreditHold;
          const debitMicro = int(hold.micro);
          const requestId = `req_${requestCounter++}`;
          settledIds.push(requestId);
          queue.enqueue(
            {
              requestId,
              accountId: hold.accountId,
              keyId: null,
              node: pick([NODE_A, NODE_B]),
              model: "m",
              promptTokens: int(2_000),
              completionTokens: int(1_000),
              debitMicro,
              providerCreditMicro: providerCreditMicro(debitMicro, {
                providerShare: 0.8,
                rampFactor: pick([0.25, 0.5, 1]),
                switchPenalty: pick([0.5, 1]),
                bounty: pick([1, 1.25, 2]),
              }),
              receiptStatus: pick(["valid", "valid", "valid", "missing", "invalid", "mismatch"] as const),
              multipliers: {},
            },
            hold,
          );
        } else if (roll < 0.83 && settledIds.length > 0) {
          // A retried settlement of a request already billed (or about to be).
          queue.enqueue({ ...settlementFor(pick(settledIds), pick(ids)), debitMicro: 0 });
        } else if (roll < 0.88) {
          // Garbage from a buggy caller: refused at once, nothing buffered.
          const garbage = pick<Partial<UsageSettlement>>([
            { debitMicro: -5 },
            { debitMicro: 10, providerCreditMicro: 11 },
            { debitMicro: Number.NaN },
            { node: "0x123" },
          ]);
          try {
            queue.enqueue({ ...settlementFor(`bad_${op}`, pick(ids)), ...garbage });
            throw new Error("garbage was accepted");
          } catch (error) {
            if (isGbtError(error, "INVALID_INPUT")) refused.invalid++;
            else throw error;
          }
        } else if (roll < 0.95) {
          // A request that failed before any usage: its hold goes back.
          const hold = open.splice(int(open.length - 1), 1)[0] as CreditHold;
          hold.release();
          if (random() < 0.3) hold.release(); // idempotent
        } else {
          await (random() < 0.5 ? queue.flush() : new Promise((resolve) => setImmediate(resolve)));
        }
        // No admission ever promises more than the account holds.
        expect(ids.filter((id) => reservations.available(id) < 0)).toEqual([]);
      }
      for (const hold of open) hold.release();
      queue.close();

      const report = ledger.checkInvariants();
      expect(report).toEqual({
        ok: true,
        totalMicro: 0,
        unbalancedTransactions: [],
        negativeConsumers: [],
        duplicateRequestIds: [],
        mismatchedUsage: [],
      });
      for (const id of ids) {
        const balance = ledger.balanceMicro(consumerAccount(id));
        expect(balance).toBeGreaterThanOrEqual(0);
        expect(reservations.settledMicro(id)).toBe(balance); // the cache followed every settlement
        expect(reservations.heldMicro(id)).toBe(0);
      }
      const { debits } = db.prepare("SELECT COALESCE(SUM(debit), 0) AS debits FROM usage_records").get() as {
        debits: number;
      };
      const credited = ledger
        .balances()
        .filter(
          (b) =>
            b.account.startsWith("provider:") ||
            b.account === PLATFORM_ACCOUNT ||
            b.account === SUSPENSE_ACCOUNT,
        )
        .reduce((sum, b) => sum + b.balanceMicro, 0);
      expect(debits).toBeGreaterThan(0);
      expect(credited).toBe(debits);
      // The run exercised every path.
      expect(refused.duplicate).toBeGreaterThan(10);
      expect(refused.invalid).toBeGreaterThan(10);
      expect(refused.funds).toBeGreaterThan(10);
      expect(refused.other).toBe(0);
      expect(settledIds.length).toBeGreaterThan(300);
    });
  },
);

function settlementFor(requestId: string, accountId: string): UsageSettlement {
  return settlement(accountId, { requestId, debitMicro: 1, providerCreditMicro: 0 });
}
