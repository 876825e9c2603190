/**
 * In-memory credit holds, so that admitting a request never touches the disk. Before a request
 * is routed the gateway holds its worst-case cost; the hold is released once the real debit is
 * durable in the ledger (see `SettlementQueue`). Available credit is the settled balance, read
 * from SQLite once per account and then kept in step by `applySettled`, minus outstanding holds.
 * JavaScript runs one request's admission at a time, so concurrent holds cannot overspend.
 */
import { GbtError } from "@gbt/protocol";
import { formatCredits } from "./pricing.js";

/** Credits set aside for one request until its settlement lands. */
export interface CreditHold {
  readonly accountId: string;
  readonly micro: number;
  readonly released: boolean;
  /** Returns the credits to the account. Idempotent. */
  release(): void;
}

export interface ReserveOptions {
  /** Hold even past the available balance: for usage already served, which will be billed anyway. */
  overdraft?: boolean;
}

export class CreditHolds {
  readonly #settled = new Map<string, number>();
  readonly #held = new Map<string, number>();

  /** `balanceOf` reads an account's settled balance in micro-credits (e.g. from the ledger). */
  constructor(private readonly balanceOf: (accountId: string) => number) {}

  /**
   * Holds `micro` for `accountId`; INSUFFICIENT_FUNDS (with `availableMicro`, `requiredMicro`)
   * when the settled balance less outstanding holds is short.
   */
  reserve(accountId: string, micro: number, options: ReserveOptions = {}): CreditHold {
    if (!(Number.isSafeInteger(micro) && micro >= 0)) {
      throw new GbtError(
        "INVALID_INPUT",
        `A hold is an integer ≥ 0 of micro-credits, got ${String(micro)}.`,
        {
          details: { accountId, micro },
        },
      );
    }
    const available = this.available(accountId);
    if (micro > available && options.overdraft !== true) {
      throw new GbtError(
        "INSUFFICIENT_FUNDS",
        `Not enough credits: this request may cost up to ${formatCredits(micro)}, the account has ${formatCredits(Math.max(0, available))} available.`,
        {
          details: { accountId, availableMicro: available, requiredMicro: micro },
          hint: "Add credits to the account, lower max_tokens, or wait for requests in flight to finish.",
        },
      );
    }
    this.#held.set(accountId, this.heldMicro(accountId) + micro);
    let released = false;
    const held = this.#held;
    return {
      accountId,
      micro,
      get released() {
        return released;
      },
      release: () => {
        if (released) return;
        released = true;
        const remaining = (held.get(accountId) ?? 0) - micro;
        if (remaining > 0) held.set(accountId, remaining);
        else held.delete(accountId);
      },
    };
  }

  /** Settled balance less outstanding holds, in micro-credits (negative if overdrawn). */
  available(accountId: string): number {
    return this.settledMicro(accountId) - this.heldMicro(accountId);
  }

  /** The cached settled balance (read from `balanceOf` on first use). */
  settledMicro(accountId: string): number {
    let settled = this.#settled.get(accountId);
    if (settled === undefined) {
      settled = this.balanceOf(accountId);
      this.#settled.set(accountId, settled);
    }
    return settled;
  }

  /** Outstanding holds of the account. */
  heldMicro(accountId: string): number {
    return this.#held.get(accountId) ?? 0;
  }

  /**
   * Tells the cache that `deltaMicro` was just committed to the account's settled balance
   * (negative for a debit). An account not cached yet is left alone: its first read includes it.
   */
  applySettled(accountId: string, deltaMicro: number): void {
    const settled = this.#settled.get(accountId);
    if (settled !== undefined) this.#settled.set(accountId, settled + deltaMicro);
  }

  /** Forgets cached balances (one account, or all), e.g. after another process moved credits. */
  invalidate(accountId?: string): void {
    if (accountId === undefined) this.#settled.clear();
    else this.#settled.delete(accountId);
  }
}
