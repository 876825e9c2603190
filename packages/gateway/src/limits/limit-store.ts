/**
 * Where the door's limits come from: gateway.json's `limits` (a default per key and per account,
 * and entries per key id and account id), overridden by what the admin API set (kept in gateway.db,
 * so they survive a restart). A field set to null means "no limit", also over a default.
 * Also the spend the budget check reads: the period's debits from the usage records.
 */
import { type LimitsInput, limitsInputSchema } from "@gbt/protocol";
import { migrate } from "@gbt/store";
import { z } from "zod";
import type { GatewayDatabase } from "../gateway-database.js";
import type { LimitSource, Limits, SpendSource } from "./rate-limiter.js";

export const limitsConfigSchema = z
  .strictObject({
    /** Every key's limits, unless its own entry says otherwise. */
    perKey: limitsInputSchema.default({}),
    /** Every account's limits, unless its own entry says otherwise. */
    perAccount: limitsInputSchema.default({}),
    keys: z.record(z.string().max(128), limitsInputSchema).default({}),
    accounts: z.record(z.string().max(128), limitsInputSchema).default({}),
  })
  .default({ perKey: {}, perAccount: {}, keys: {}, accounts: {} });
export type LimitsConfig = z.infer<typeof limitsConfigSchema>;

const migrations: readonly string[] = [
  `CREATE TABLE limit_overrides (
     subject_kind TEXT NOT NULL CHECK (subject_kind IN ('key', 'account')),
     subject_id TEXT NOT NULL,
     limits_json TEXT NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (subject_kind, subject_id)
   ) STRICT;`,
];

type Kind = "key" | "account";

export class LimitStore implements LimitSource, SpendSource {
  #version = 0;
  readonly #db: GatewayDatabase;
  readonly #config: LimitsConfig;
  readonly #overrides = new Map<string, LimitsInput>();
  readonly #heldMicro: (accountId: string) => number;
  readonly #spent;
  readonly #upsert;

  constructor(db: GatewayDatabase, config: LimitsConfig, heldMicro: (accountId: string) => number) {
    migrate(db, { prefix: "limits", label: "The rate limits", migrations });
    this.#db = db;
    this.#config = config;
    this.#heldMicro = heldMicro;
    for (const row of db
      .prepare("SELECT subject_kind, subject_id, limits_json FROM limit_overrides")
      .all() as {
      subject_kind: Kind;
      subject_id: string;
      limits_json: string;
    }[]) {
      this.#overrides.set(
        `${row.subject_kind}:${row.subject_id}`,
        JSON.parse(row.limits_json) as LimitsInput,
      );
    }
    this.#spent = db.prepare(
      "SELECT COALESCE(SUM(debit), 0) AS spent FROM usage_records WHERE account_id = ? AND created_at >= ?",
    );
    this.#upsert = db.prepare(
      `INSERT INTO limit_overrides (subject_kind, subject_id, limits_json, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (subject_kind, subject_id) DO UPDATE SET limits_json = excluded.limits_json, updated_at = excluded.updated_at`,
    );
  }

  get version(): number {
    return this.#version;
  }

  forKey(keyId: string): Limits {
    return this.#resolve("key", keyId);
  }

  forAccount(accountId: string): Limits {
    return this.#resolve("account", accountId);
  }

  /** The limits an admin set for one key or account (merged over what it had), kept in gateway.db. */
  set(kind: Kind, id: string, limits: LimitsInput, now = Date.now()): Limits {
    const merged = { ...this.#overrides.get(`${kind}:${id}`), ...limits };
    this.#upsert.run(kind, id, JSON.stringify(merged), now);
    this.#overrides.set(`${kind}:${id}`, merged);
    this.#version += 1;
    return this.#resolve(kind, id);
  }

  /** Removes an admin's override: the subject falls back to gateway.json. */
  clear(kind: Kind, id: string): Limits {
    this.#db.prepare("DELETE FROM limit_overrides WHERE subject_kind = ? AND subject_id = ?").run(kind, id);
    this.#overrides.delete(`${kind}:${id}`);
    this.#version += 1;
    return this.#resolve(kind, id);
  }

  /** Every override the admin API set. */
  overrides(): { kind: Kind; id: string; limits: Limits }[] {
    return [...this.#overrides.keys()].map((subject) => {
      const [kind, id] = subject.split(/:(.*)/s) as [Kind, string];
      return { kind, id, limits: this.#resolve(kind, id) };
    });
  }

  spentSince(accountId: string, sinceMs: number): number {
    return (this.#spent.get(accountId, sinceMs) as { spent: number }).spent;
  }

  heldMicro(accountId: string): number {
    return this.#heldMicro(accountId);
  }

  #resolve(kind: Kind, id: string): Limits {
    const config = this.#config;
    const merged: LimitsInput = {
      ...(kind === "key" ? config.perKey : config.perAccount),
      ...(kind === "key" ? config.keys[id] : config.accounts[id]),
      ...this.#overrides.get(`${kind}:${id}`),
    };
    const limits: Limits = {};
    if (typeof merged.requestsPerMinute === "number") limits.requestsPerMinute = merged.requestsPerMinute;
    if (typeof merged.tokensPerMinute === "number") limits.tokensPerMinute = merged.tokensPerMinute;
    if (typeof merged.concurrentRequests === "number") limits.concurrentRequests = merged.concurrentRequests;
    if (kind === "account" && typeof merged.budgetMicro === "number") {
      limits.budgetMicro = merged.budgetMicro;
      limits.budgetPeriod = merged.budgetPeriod ?? "month";
    }
    return limits;
  }
}
