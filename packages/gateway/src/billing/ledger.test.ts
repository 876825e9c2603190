import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GbtError, isGbtError } from "@gbt/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountStore } from "../auth/accounts.js";
import {
  consumerAccount,
  type GatewayDatabase,
  openGatewayDatabase,
  PLATFORM_ACCOUNT,
  providerAccount,
  SUSPENSE_ACCOUNT,
} from "../gateway-database.js";
import { Ledger, type UsageSettlement } from "./ledger.js";

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

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof GbtError) return error.code;
    throw error;
  }
  return "no error";
}

describe("Ledger.settleUsage", () => {
  it("debits the consumer exactly what the provider and the platform are credited", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    const settled = ledger.settleUsage(settlement(id, { receiptJson: '{"r":1}', gatewaySignature: "0xsig" }));
    expect(settled).toMatchObject({
      debitMicro: 1_000,
      providerCreditMicro: 800,
      platformCreditMicro: 200,
      creditedAccount: providerAccount(NODE_A),
    });
    expect(ledger.balanceMicro(consumerAccount(id))).toBe(5_000_000 - 1_000);
    expect(ledger.balanceMicro(`provider:${NODE_A.toLowerCase()}`)).toBe(800);
    expect(ledger.balanceMicro(PLATFORM_ACCOUNT)).toBe(200);
    expect(ledger.balanceMicro(SUSPENSE_ACCOUNT)).toBe(0);
    expect(ledger.checkInvariants()).toMatchObject({ ok: true, totalMicro: 0 });

    const [record] = ledger.usage(id, 10);
    expect(record).toMatchObject({
      requestId: "req_1",
      node: NODE_A.toLowerCase(),
      debitMicro: 1_000,
      providerCreditMicro: 800,
      platformCreditMicro: 200,
      receiptStatus: "valid",
      receiptJson: '{"r":1}',
      gatewaySignature: "0xsig",
      multipliers: { providerShare: 0.8, rampFactor: 1, switchPenalty: 1, bounty: 1 },
      createdAt: "2023-11-14T22:13:20.000Z",
    });
  });

  it("holds the provider's share in suspense when the receipt did not check out", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    for (const [i, receiptStatus] of (["missing", "invalid", "mismatch"] as const).entries()) {
      const settled = ledger.settleUsage(settlement(id, { requestId: `req_${i}`, receiptStatus }));
      expect(settled.creditedAccount).toBe(SUSPENSE_ACCOUNT);
    }
    expect(ledger.balanceMicro(SUSPENSE_ACCOUNT)).toBe(2_400);
    expect(ledger.balanceMicro(providerAccount(NODE_A))).toBe(0);
    expect(ledger.balanceMicro(PLATFORM_ACCOUNT)).toBe(600);
    expect(ledger.usage(id, 10).map((r) => r.receiptStatus)).toEqual(["mismatch", "invalid", "missing"]);
  });

  it("skips zero-amount entries: a free request, and a provider earning nothing", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    const free = ledger.settleUsage(
      settlement(id, { requestId: "free", debitMicro: 0, providerCreditMicro: 0 }),
    );
    const unpaid = ledger.settleUsage(
      settlement(id, { requestId: "unpaid", debitMicro: 10, providerCreditMicro: 0 }),
    );
    const count = (tx: number) =>
      (
        db.prepare("SELECT COUNT(*) AS n FROM ledger_entries WHERE transaction_id = ?").get(tx) as {
          n: number;
        }
      ).n;
    expect(count(free.transactionId)).toBe(0);
    expect(count(unpaid.transactionId)).toBe(2);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("refuses a request id that was already settled, writing nothing", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    ledger.settleUsage(settlement(id));
    const before = snapshot();
    const error = (() => {
      try {
        ledger.settleUsage(settlement(id, { debitMicro: 5, providerCreditMicro: 1, node: NODE_B }));
      } catch (e) {
        return e;
      }
    })();
    expect(isGbtError(error, "ALREADY_EXISTS")).toBe(true);
    expect((error as GbtError).details).toEqual({ requestId: "req_1" });
    expect(snapshot()).toEqual(before);
  });

  it("refuses invalid amounts and unknown accounts, writing nothing", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    const before = snapshot();
    const bad: Partial<UsageSettlement>[] = [
      { debitMicro: -1 },
      { debitMicro: 1.5 },
      { debitMicro: Number.NaN },
      { debitMicro: Number.MAX_SAFE_INTEGER + 1 },
      { providerCreditMicro: 1_001 },
      { providerCreditMicro: -1 },
      { promptTokens: -3 },
      { completionTokens: 0.5 },
      { receiptStatus: "forged" as never },
      { node: "not-an-address" },
      { requestId: "" },
      { requestId: "has space" },
      { multipliers: { bounty: Number.POSITIVE_INFINITY } },
    ];
    for (const override of bad) {
      expect(
        codeOf(() => ledger.settleUsage(settlement(id, override))),
        JSON.stringify(override),
      ).toBe("INVALID_INPUT");
    }
    expect(codeOf(() => ledger.settleUsage(null as never))).toBe("INVALID_INPUT");
    expect(codeOf(() => ledger.settleUsage(settlement("acct_nope")))).toBe("NOT_FOUND");
    expect(snapshot()).toEqual(before);
  });

  it("refuses a settlement whose request id a grant took, in a batch, writing nothing for it", () => {
    const { id } = accounts.createAccount({ name: "alice", initialMicro: 10_000 });
    ledger.post({
      kind: "grant",
      requestId: "taken",
      entries: [
        { account: "treasury", amountMicro: -5 },
        { account: consumerAccount(id), amountMicro: 5 },
      ],
    });
    const before = snapshot();
    const outcomes = ledger.settleBatch([
      settlement(id, { requestId: "taken" }),
      settlement(id, { requestId: "free", debitMicro: 0, providerCreditMicro: 0 }),
    ]);
    expect(outcomes.map((o) => (o.ok ? "ok" : (o.error as GbtError).code))).toEqual(["ALREADY_EXISTS", "ok"]);
    const after = snapshot();
    expect(after.usage.map((u) => (u as { request_id: string }).request_id)).toEqual(["free"]);
    expect(after.entries).toEqual(before.entries);
    expect(ledger.checkInvariants().ok).toBe(true);
  });

  it("refuses unbalanced postings", () => {
    expect(
      codeOf(() =>
        ledger.post({
          kind: "adjust",
          entries: [
            { account: "treasury", amountMicro: -1 },
            { account: PLATFORM_ACCOUNT, amountMicro: 2 },
          ],
        }),
      ),
    ).toBe("INVALID_INPUT");
    expect(snapshot().transactions).toEqual([]);
  });
});
