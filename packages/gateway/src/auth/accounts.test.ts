import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../billing/ledger.js";
import {
  consumerAccount,
  type GatewayDatabase,
  openGatewayDatabase,
  TREASURY_ACCOUNT,
} from "../gateway-database.js";
import { AccountStore } from "./accounts.js";

function clock(start = 1_700_000_000_000) {
  const c = {
    t: start,
    now: () => c.t,
    advance: (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

/** A deterministic random source, so a test can know a key before it is created. */
function seededBytes(seed: number): (n: number) => Buffer {
  let counter = 0;
  return (n) => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i += 32) {
      createHash("sha256").update(`${seed}:${counter++}`).digest().copy(out, i);
    }
    return out;
  };
}

let dir: string;
let path: string;
const opened: GatewayDatabase[] = [];

function open(): GatewayDatabase {
  const db = openGatewayDatabase(path);
  opened.push(db);
  return db;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-accounts-"));
  path = join(dir, "gateway", "gateway.db");
});

afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("AccountStore accounts", () => {
  it("grants a new account exactly 5.00 credits in one balanced transaction", () => {
    const db = open();
    const accounts = new AccountStore(db);
    const account = accounts.createAccount({ name: "alice" });
    expect(account.id).toMatch(/^acct_[0-9a-f]{24}$/);
    expect(account.balanceMicro).toBe(5_000_000);

    const ledger = new Ledger(db);
    expect(ledger.balanceMicro(consumerAccount(account.id))).toBe(5_000_000);
    expect(ledger.balanceMicro(TREASURY_ACCOUNT)).toBe(-5_000_000);
    const transactions = db.prepare("SELECT id, kind FROM ledger_transactions").all();
    expect(transactions).toEqual([{ id: 1, kind: "grant" }]);
    expect(ledger.checkInvariants()).toMatchObject({ ok: true, totalMicro: 0 });
    expect(accounts.listAccounts()).toEqual([account]);
    expect(accounts.getAccount(account.id)).toEqual(account);
  });

  it("takes a custom grant, and writes nothing for a rejected name", () => {
    const accounts = new AccountStore(open());
    expect(accounts.createAccount({ name: "bob", initialMicro: 0 }).balanceMicro).toBe(0);
    expect(() => accounts.createAccount({ name: "" })).toThrow(/account name/);
    expect(() => accounts.createAccount({ name: "x\ny" })).toThrow(/account name/);
    expect(() => accounts.createAccount({ name: "ok", initialMicro: 1.5 })).toThrow(/grant/);
    expect(accounts.listAccounts().map((a) => a.name)).toEqual(["bob"]);
  });
});

describe("AccountStore API keys", () => {
  it("stores keys only as their sha256: the raw key is nowhere in the database files", () => {
    const db = open();
    const accounts = new AccountStore(db);
    const account = accounts.createAccount({ name: "alice" });
    const created = accounts.createApiKey(account.id, "laptop");
    expect(created.key).toMatch(/^gbt_gk_[A-Za-z0-9_-]{43}$/);
    expect(created.prefix).toBe(created.key.slice(0, 12));
    const secret = created.key.slice(12); // the part that is never shown again
    const expectNowhere = () => {
      for (const file of readdirSync(join(dir, "gateway"))) {
        expect(readFileSync(join(dir, "gateway", file)).includes(secret), file).toBe(false);
      }
    };
    expectNowhere(); // in the WAL
    db.pragma("wal_checkpoint(TRUNCATE)");
    expectNowhere(); // in the main file
    const hash = createHash("sha256").update(created.key).digest("hex");
    expect(db.prepare("SELECT key_hash FROM api_keys").get()).toEqual({ key_hash: hash });
  });

  it("authenticates live keys, refuses revoked ones and garbage", () => {
    const accounts = new AccountStore(open());
    const account = accounts.createAccount({ name: "alice" });
    const key = accounts.createApiKey(account.id, "laptop");
    expect(accounts.authenticate(key.key)).toEqual({ accountId: account.id, keyId: key.id });
    expect(accounts.authenticate(key.key)).toEqual({ accountId: account.id, keyId: key.id });

    for (const garbage of [
      "",
      "gbt_gk_",
      `${key.key}x`,
      key.key.slice(0, -1),
      `Bearer ${key.key}`,
      "gbt_sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "x".repeat(1_000_000),
      undefined,
      null,
      42,
      {},
    ]) {
      expect(accounts.authenticate(garbage)).toBeNull();
    }

    const revoked = accounts.revokeApiKey(key.prefix);
    expect(revoked.revokedAt).not.toBeNull();
    expect(accounts.authenticate(key.key)).toBeNull();
    expect(accounts.listApiKeys(account.id)).toEqual([revoked]);
  });

  it("refuses keys for unknown accounts and bad names, and ambiguous or unknown revocations", () => {
    const accounts = new AccountStore(open());
    const account = accounts.createAccount({ name: "alice" });
    expect(() => accounts.createApiKey("acct_nope", "k")).toThrow(
      expect.objectContaining({ code: "NOT_FOUND" }) as Error,
    );
    expect(() => accounts.createApiKey(account.id, "bad/name")).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }) as Error,
    );
    accounts.createApiKey(account.id, "a");
    accounts.createApiKey(account.id, "b");
    expect(() => accounts.revokeApiKey("gbt_gk_")).toThrow(
      expect.objectContaining({ code: "NOT_FOUND" }) as Error,
    );
    expect(() => accounts.revokeApiKey("key_nope")).toThrow(
      expect.objectContaining({ code: "NOT_FOUND" }) as Error,
    );
    expect(accounts.listApiKeys()).toHaveLength(2);
  });

  it("picks up a key created by another process within the 1 s negative cache", () => {
    const c = clock();
    const gateway = new AccountStore(open(), c.now);
    const account = gateway.createAccount({ name: "alice" });
    // The CLI: another connection to the same file, with a random source we can replay.
    const cli = new AccountStore(open(), c.now, { random: seededBytes(7) });
    const replay = seededBytes(7);
    replay(12); // the CLI's account id
    const futureKey = `gbt_gk_${replay(32).toString("base64url")}`;
    const cliAccount = cli.createAccount({ name: "bob" });

    // The gateway sees the key before it exists, and remembers that it is unknown…
    expect(gateway.authenticate(futureKey)).toBeNull();
    const created = cli.createApiKey(cliAccount.id, "x");
    expect(created.key).toBe(futureKey);
    c.advance(999);
    expect(gateway.authenticate(futureKey)).toBeNull();
    // …for at most a second.
    c.advance(1);
    expect(gateway.authenticate(futureKey)).toEqual({ accountId: cliAccount.id, keyId: created.id });

    // A key the gateway never looked up works at once.
    const fresh = cli.createApiKey(account.id, "fresh");
    expect(gateway.authenticate(fresh.key)).toEqual({ accountId: account.id, keyId: fresh.id });
  });

  it("drops a cached key when revoked through the same store, and after positiveTtlMs otherwise", () => {
    const c = clock();
    const gateway = new AccountStore(open(), c.now, { positiveTtlMs: 30_000 });
    const cli = new AccountStore(open(), c.now);
    const account = gateway.createAccount({ name: "alice" });
    const key = cli.createApiKey(account.id, "k");
    expect(gateway.authenticate(key.key)).not.toBeNull();
    cli.revokeApiKey(key.id);
    expect(gateway.authenticate(key.key)).not.toBeNull(); // cached: no disk read per request
    c.advance(30_000);
    expect(gateway.authenticate(key.key)).toBeNull();

    const second = gateway.createApiKey(account.id, "k2");
    expect(gateway.authenticate(second.key)).not.toBeNull();
    gateway.revokeApiKey(second.id);
    expect(gateway.authenticate(second.key)).toBeNull();
  });
});
