/**
 * Local API keys for `gbt serve`. Keys are random (`gbt_sk_…`, 192 bits), shown once at
 * creation, and stored only as their sha256; revocation takes effect on the next request.
 */
import { randomUUID } from "node:crypto";
import { GbtError } from "@gbt/protocol";
import { checkApiKeyName, type GbtPaths, hashApiKey, newApiKey, resolvePaths } from "@gbt/store";
import { type NodeDatabase, openNodeDatabase } from "../node-database.js";

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** The first characters of the key, to recognise it in lists. */
  prefix: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The secret itself: shown once, never stored. */
  key: string;
}

const KEY_PREFIX = "gbt_sk_";

interface Row {
  id: string;
  name: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

const toInfo = (row: Row): ApiKeyInfo => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  createdAt: new Date(row.created_at).toISOString(),
  revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
});

export class ApiKeyStore {
  private readonly findActive;

  constructor(
    private readonly db: NodeDatabase,
    private readonly now: () => number = Date.now,
  ) {
    this.findActive = db.prepare("SELECT id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL");
  }

  create(name: string): CreatedApiKey {
    checkApiKeyName("key", name);
    const { key, prefix, hash } = newApiKey(KEY_PREFIX, 24);
    const row: Row = {
      id: randomUUID(),
      name,
      prefix,
      created_at: this.now(),
      revoked_at: null,
    };
    this.db
      .prepare("INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(row.id, row.name, row.prefix, hash, row.created_at);
    return { ...toInfo(row), key };
  }

  list(): ApiKeyInfo[] {
    return (this.db.prepare("SELECT * FROM api_keys ORDER BY created_at, id").all() as Row[]).map(toInfo);
  }

  /** Revokes by id or prefix; NOT_FOUND when nothing matches, INVALID_INPUT when a prefix is ambiguous. */
  revoke(idOrPrefix: string): ApiKeyInfo {
    // An id, the whole key, or the start of the prefix shown by `gbt keys list` (at least 7 characters).
    const prefix = idOrPrefix.replace(/…$/, "");
    const rows = this.db
      .prepare(
        "SELECT * FROM api_keys WHERE id = ? OR key_hash = ? OR (length(?) >= 7 AND substr(prefix, 1, length(?)) = ?)",
      )
      .all(idOrPrefix, hashApiKey(idOrPrefix), prefix, prefix, prefix) as Row[];
    if (rows.length === 0) {
      throw new GbtError("NOT_FOUND", `No API key matches ${JSON.stringify(idOrPrefix)}.`, {
        hint: "List keys with `gbt keys list`.",
      });
    }
    if (rows.length > 1) {
      throw new GbtError(
        "INVALID_INPUT",
        `${rows.length} keys match ${JSON.stringify(idOrPrefix)}; give the key id.`,
      );
    }
    const row = rows[0] as Row;
    if (row.revoked_at === null) {
      row.revoked_at = this.now();
      this.db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").run(row.revoked_at, row.id);
    }
    return toInfo(row);
  }

  /** True when `key` is a live key. Constant work per call: one indexed lookup of the hash. */
  verify(key: string): boolean {
    if (!key.startsWith(KEY_PREFIX) || key.length > 128) return false;
    return this.findActive.get(hashApiKey(key)) !== undefined;
  }

  hasKeys(): boolean {
    return this.db.prepare("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").get() !== undefined;
  }
}

/** Opens the node database of this GBT_HOME, runs `fn` with its key store, and closes it. */
export function withNodeApiKeys<T>(fn: (keys: ApiKeyStore) => T, paths: GbtPaths = resolvePaths()): T {
  const db = openNodeDatabase(paths.nodeDatabase);
  try {
    return fn(new ApiKeyStore(db));
  } finally {
    db.close();
  }
}
