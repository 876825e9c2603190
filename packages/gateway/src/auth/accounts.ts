/**
 * Consumer accounts of the gateway and their API keys. A new account is granted its starting
 * credits as a real ledger transaction (treasury → consumer). Keys (`gbt_gk_…`, 256 bits) are
 * shown once and stored only as their sha256.
 *
 * `authenticate` runs on every request, so it answers from memory: a live key is cached until
 * revoked through this store (or `positiveTtlMs`), and an unknown one for at most
 * `negativeTtlMs` (1 s), so a key created by another process on the same file — the CLI — works
 * within a second without every bad key costing a SQLite read. Both caches are bounded LRUs
 * (lru-cache): a flood of keys evicts the least recently used, which only costs a re-read. Each
 * entry keeps its own time, so an entry expires exactly `ttl` after it was read.
 */
import { randomBytes } from "node:crypto";
import { GbtError } from "@gbt/protocol";
import { checkApiKeyName, hashApiKey, newApiKey } from "@gbt/store";
import { LRUCache } from "lru-cache";
import { Ledger } from "../billing/ledger.js";
import { consumerAccount, type GatewayDatabase, TREASURY_ACCOUNT } from "../gateway-database.js";

/** Every new account starts with 5.00 credits. */
export const DEFAULT_GRANT_MICRO = 5_000_000;

const KEY_PREFIX = "gbt_gk_";
/** The prefix and 32 random bytes in base64url (43 characters). */
const KEY_PATTERN = /^gbt_gk_[A-Za-z0-9_-]{43}$/;
/** How many unknown keys are remembered at most, so that a flood of random keys cannot grow memory. */
const MAX_NEGATIVE_ENTRIES = 10_000;
/** How many live keys are remembered at most. */
const MAX_POSITIVE_ENTRIES = 50_000;

export interface AccountInfo {
  id: string;
  name: string;
  createdAt: string;
  balanceMicro: number;
}

export interface ApiKeyInfo {
  id: string;
  accountId: string;
  name: string;
  /** The first characters of the key, to recognise it in lists. */
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedApiKey extends Omit<ApiKeyInfo, "revokedAt"> {
  /** The secret itself: shown once, never stored. */
  key: string;
}

/** Who a valid key belongs to. */
export interface Authenticated {
  accountId: string;
  keyId: string;
}

export interface AccountStoreOptions {
  /** How long an unknown key is remembered as unknown (default 1 000 ms). */
  negativeTtlMs?: number;
  /**
   * How long a valid key is trusted without re-reading SQLite (default: until revoked through
   * this store). Set it when keys are revoked by another process and must stop working.
   */
  positiveTtlMs?: number;
  /** Random source for keys and ids (tests inject a deterministic one). */
  random?: (bytes: number) => Buffer;
}

interface KeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_at: number;
  revoked_at: number | null;
}

const toKeyInfo = (row: KeyRow): ApiKeyInfo => ({
  id: row.id,
  accountId: row.account_id,
  name: row.name,
  prefix: row.prefix,
  createdAt: new Date(row.created_at).toISOString(),
  revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
});

export class AccountStore {
  readonly #ledger: Ledger;
  /** Live keys by hash, with when they were read. */
  readonly #valid = new LRUCache<string, Authenticated & { checkedAt: number }>({
    max: MAX_POSITIVE_ENTRIES,
  });
  /** Unknown keys by hash, with until when they are taken as unknown. */
  readonly #unknownUntil = new LRUCache<string, number>({ max: MAX_NEGATIVE_ENTRIES });
  readonly #negativeTtlMs: number;
  readonly #positiveTtlMs: number;
  readonly #random: (bytes: number) => Buffer;
  private readonly statements;
  private readonly createAccountInTransaction;

  constructor(
    db: GatewayDatabase,
    private readonly now: () => number = Date.now,
    options: AccountStoreOptions = {},
  ) {
    this.#ledger = new Ledger(db, now);
    this.#negativeTtlMs = options.negativeTtlMs ?? 1_000;
    this.#positiveTtlMs = options.positiveTtlMs ?? Number.POSITIVE_INFINITY;
    this.#random = options.random ?? randomBytes;
    this.statements = {
      insertAccount: db.prepare("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)"),
      account: db.prepare("SELECT id, name, created_at FROM accounts WHERE id = ?"),
      accountsWithBalances: db.prepare(
        `SELECT a.id, a.name, a.created_at,
           (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e WHERE e.account = 'consumer:' || a.id) AS balance
         FROM accounts a ORDER BY a.created_at, a.id`,
      ),
      insertKey: db.prepare(
        "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      findActiveKey: db.prepare(
        "SELECT id, account_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
      ),
      keysOfAccount: db.prepare("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id"),
      allKeys: db.prepare("SELECT * FROM api_keys ORDER BY created_at, id"),
      keysMatching: db.prepare(
        "SELECT * FROM api_keys WHERE id = ? OR key_hash = ? OR (length(?) > 7 AND substr(prefix, 1, length(?)) = ?)",
      ),
      revokeKey: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?"),
    };
    this.createAccountInTransaction = db.transaction(
      (id: string, name: string, createdAt: number, grant: number) => {
        this.statements.insertAccount.run(id, name, createdAt);
        if (grant > 0) {
          this.#ledger.post({
            kind: "grant",
            createdAt,
            memo: "starting credits",
            entries: [
              { account: TREASURY_ACCOUNT, amountMicro: -grant },
              { account: consumerAccount(id), amountMicro: grant },
            ],
          });
        }
      },
    );
  }

  /** Creates an account and grants it `initialMicro` (default 5.00 credits), atomically. */
  createAccount({
    name,
    initialMicro = DEFAULT_GRANT_MICRO,
  }: {
    name: string;
    initialMicro?: number;
  }): AccountInfo {
    checkApiKeyName("account", name);
    if (!(Number.isSafeInteger(initialMicro) && initialMicro >= 0)) {
      throw new GbtError("INVALID_INPUT", "The starting grant is an integer ≥ 0 of micro-credits.", {
        details: { initialMicro },
      });
    }
    const id = `acct_${this.#random(12).toString("hex")}`;
    const createdAt = this.now();
    this.createAccountInTransaction.immediate(id, name, createdAt, initialMicro);
    return { id, name, createdAt: new Date(createdAt).toISOString(), balanceMicro: initialMicro };
  }

  /** One account with its balance; NOT_FOUND when unknown. */
  getAccount(accountId: string): AccountInfo {
    const row = this.statements.account.get(accountId) as
      | { id: string; name: string; created_at: number }
      | undefined;
    if (row === undefined) throw accountNotFound(accountId);
    return {
      id: row.id,
      name: row.name,
      createdAt: new Date(row.created_at).toISOString(),
      balanceMicro: this.#ledger.balanceMicro(consumerAccount(row.id)),
    };
  }

  /** Every account with its settled balance, oldest first. */
  listAccounts(): AccountInfo[] {
    const rows = this.statements.accountsWithBalances.all() as {
      id: string;
      name: string;
      created_at: number;
      balance: number;
    }[];
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      createdAt: new Date(row.created_at).toISOString(),
      balanceMicro: row.balance,
    }));
  }

  /** Creates a key for the account; the returned `key` is the only copy of the secret. */
  createApiKey(accountId: string, name: string): CreatedApiKey {
    checkApiKeyName("key", name);
    if (this.statements.account.get(accountId) === undefined) throw accountNotFound(accountId);
    const { key, prefix, hash } = newApiKey(KEY_PREFIX, 32, this.#random);
    const id = `key_${this.#random(12).toString("hex")}`;
    const createdAt = this.now();
    this.statements.insertKey.run(id, accountId, name, prefix, hash, createdAt);
    this.#unknownUntil.delete(hash);
    return { id, accountId, name, prefix, key, createdAt: new Date(createdAt).toISOString() };
  }

  /** Keys of one account, or of all accounts, oldest first. */
  listApiKeys(accountId?: string): ApiKeyInfo[] {
    const rows = (
      accountId === undefined ? this.statements.allKeys.all() : this.statements.keysOfAccount.all(accountId)
    ) as KeyRow[];
    return rows.map(toKeyInfo);
  }

  /**
   * Revokes a key by id, whole key, or the start of its prefix (more than `gbt_gk_`); it stops
   * working in this process at once. NOT_FOUND when nothing matches, INVALID_INPUT when ambiguous.
   */
  revokeApiKey(idOrPrefix: string): ApiKeyInfo {
    const prefix = idOrPrefix.replace(/…$/, "");
    const rows = this.statements.keysMatching.all(
      idOrPrefix,
      hashApiKey(idOrPrefix),
      prefix,
      prefix,
      prefix,
    ) as KeyRow[];
    if (rows.length === 0) {
      throw new GbtError("NOT_FOUND", `No gateway API key matches ${JSON.stringify(idOrPrefix)}.`, {
        hint: "List keys with `gbt gateway keys list`.",
      });
    }
    if (rows.length > 1) {
      throw new GbtError(
        "INVALID_INPUT",
        `${rows.length} keys match ${JSON.stringify(idOrPrefix)}; give the key id.`,
        { details: { matches: rows.map((row) => row.id) } },
      );
    }
    const row = rows[0] as KeyRow;
    if (row.revoked_at === null) {
      row.revoked_at = this.now();
      this.statements.revokeKey.run(row.revoked_at, row.id);
    }
    this.#valid.delete(row.key_hash);
    return toKeyInfo(row);
  }

  /**
   * The account and key behind `key`, or null when it is not a live key. Never throws on
   * garbage; answers from memory except for the first sight of a well-formed key.
   */
  authenticate(key: unknown): Authenticated | null {
    if (typeof key !== "string" || !KEY_PATTERN.test(key)) return null;
    const hash = hashApiKey(key);
    const now = this.now();
    const valid = this.#valid.get(hash);
    if (valid !== undefined && now - valid.checkedAt < this.#positiveTtlMs) {
      return { accountId: valid.accountId, keyId: valid.keyId };
    }
    const unknownUntil = this.#unknownUntil.get(hash);
    if (unknownUntil !== undefined && now < unknownUntil) return null;

    const row = this.statements.findActiveKey.get(hash) as { id: string; account_id: string } | undefined;
    if (row === undefined) {
      this.#valid.delete(hash);
      this.#unknownUntil.set(hash, now + this.#negativeTtlMs);
      return null;
    }
    this.#unknownUntil.delete(hash);
    this.#valid.set(hash, { accountId: row.account_id, keyId: row.id, checkedAt: now });
    return { accountId: row.account_id, keyId: row.id };
  }
}

function accountNotFound(accountId: string): GbtError {
  return new GbtError("NOT_FOUND", `No gateway account ${JSON.stringify(accountId)}.`, {
    details: { accountId },
    hint: "List accounts with `gbt gateway accounts list`.",
  });
}
