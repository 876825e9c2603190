import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GbtError } from "@gbt/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountStore } from "../auth/accounts.js";
import { consumerAccount, type GatewayDatabase, openGatewayDatabase } from "../gateway-database.js";
import { CreditHolds } from "./credit-holds.js";
import { Ledger } from "./ledger.js";

let dir: string;
let db: GatewayDatabase;
let accounts: AccountStore;
let ledger: Ledger;
let reservations: CreditHolds;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-reservations-"));
  db = openGatewayDatabase(join(dir, "gateway.db"));
  accounts = new AccountStore(db);
  ledger = new Ledger(db);
  reservations = new CreditHolds((id) => ledger.balanceMicro(consumerAccount(id)));
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function insufficient(fn: () => unknown): GbtError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GbtError && error.code === "INSUFFICIENT_FUNDS") return error;
    throw error;
  }
  throw new Error("expected INSUFFICIENT_FUNDS");
}

describe("CreditHolds", () => {
  it("reduces availability by each hold and restores it on release, once", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    expect(reservations.available(id)).toBe(5_000_000);
    const a = reservations.reserve(id, 2_000_000);
    const b = reservations.reserve(id, 1_000_000);
    expect(reservations.available(id)).toBe(2_000_000);
    expect(reservations.heldMicro(id)).toBe(3_000_000);
    a.release();
    a.release();
    expect(a.released).toBe(true);
    expect(reservations.available(id)).toBe(4_000_000);
    b.release();
    expect(reservations.available(id)).toBe(5_000_000);
    expect(reservations.heldMicro(id)).toBe(0);
  });

  it("refuses a hold the account cannot cover, saying how much is available and required", () => {
    const { id } = accounts.createAccount({ name: "alice", initialMicro: 1_000_000 });
    const hold = reservations.reserve(id, 600_000);
    const error = insufficient(() => reservations.reserve(id, 400_001));
    expect(error.details).toEqual({ accountId: id, availableMicro: 400_000, requiredMicro: 400_001 });
    expect(error.hint).toMatch(/Add credits/);
    expect(error.message).toMatch(/0\.400001.*0\.400000/);
    expect(error.exitCode).toBe(7);
    // The failed attempt held nothing; exactly the rest still fits.
    reservations.reserve(id, 400_000);
    expect(reservations.available(id)).toBe(0);
    hold.release();
    expect(reservations.available(id)).toBe(600_000);
  });

  it("gives an unknown account nothing, and rejects holds that are not whole micro-credits", () => {
    expect(insufficient(() => reservations.reserve("acct_nope", 1)).details).toMatchObject({
      availableMicro: 0,
    });
    const { id } = accounts.createAccount({ name: "alice" });
    for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => reservations.reserve(id, bad)).toThrow(expect.objectContaining({ code: "INVALID_INPUT" }));
    }
    expect(reservations.available(id)).toBe(5_000_000);
  });

  it("lets concurrent requests hold no more than the balance between them", async () => {
    const { id } = accounts.createAccount({ name: "alice" }); // 5.00 credits
    let held = 0;
    let peak = 0;
    let refused = 0;
    const request = async (i: number) => {
      await new Promise((resolve) => setTimeout(resolve, i % 7));
      let hold: ReturnType<CreditHolds["reserve"]>;
      try {
        hold = reservations.reserve(id, 300_000);
      } catch (error) {
        if (error instanceof GbtError && error.code === "INSUFFICIENT_FUNDS") {
          refused++;
          return;
        }
        throw error;
      }
      held += hold.micro;
      peak = Math.max(peak, held);
      await new Promise((resolve) => setTimeout(resolve, 5 + (i % 5)));
      held -= hold.micro;
      hold.release();
    };
    await Promise.all(Array.from({ length: 200 }, (_, i) => request(i)));
    expect(peak).toBeLessThanOrEqual(5_000_000);
    expect(peak).toBeGreaterThanOrEqual(2 * 300_000);
    expect(refused).toBeGreaterThan(0);
    expect(reservations.available(id)).toBe(5_000_000);
  });

  it("follows settled debits through applySettled, and rereads after invalidate", () => {
    const { id } = accounts.createAccount({ name: "alice" });
    expect(reservations.available(id)).toBe(5_000_000); // cached now
    ledger.adjustConsumer(id, 1_000_000, "top-up by another process");
    expect(reservations.available(id)).toBe(5_000_000);
    reservations.applySettled(id, -250_000);
    expect(reservations.settledMicro(id)).toBe(4_750_000);
    reservations.invalidate(id);
    expect(reservations.available(id)).toBe(6_000_000);
    reservations.applySettled("acct_not_cached", -1); // a no-op: the first read will include it
    expect(reservations.available("acct_not_cached")).toBe(0);
  });

  it("holds past the balance only when asked to (usage already served)", () => {
    const { id } = accounts.createAccount({ name: "alice", initialMicro: 100 });
    const hold = reservations.reserve(id, 150, { overdraft: true });
    expect(reservations.available(id)).toBe(-50);
    insufficient(() => reservations.reserve(id, 1));
    hold.release();
    expect(reservations.available(id)).toBe(100);
  });
});
