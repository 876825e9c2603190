/**
 * Limits at the door, per API key and per account: requests per minute, tokens per minute,
 * concurrent requests and a spend budget per period. A key may hold a lot of credit and still must
 * not take the whole pool; a leaked key must not spend an account dry in a minute.
 *
 * - Requests per minute are exact over any sliding 60 s: each subject keeps the times of its last
 *   `limit` admitted requests in a ring, and a request is admitted when the oldest of them is more
 *   than a minute old. 60 RPM means at most 60 answers in any minute, never 120 across a boundary.
 * - Tokens per minute count as OpenAI counts them at the door: the request's estimated prompt
 *   (its body's bytes / 4, rounded up) plus its `max_tokens`, in one-second buckets over 60 s.
 *   A request is admitted while the window is below the limit.
 * - Concurrent requests: a count, released when the request ends, whatever way it ends.
 * - The spend budget (an account's, per UTC day or month) is checked against what the period's
 *   usage records have debited (re-read at most once a second) plus what is held for requests in
 *   flight plus this request's hold, so a budget cannot be outrun by many requests at once.
 *
 * The tighter of key and account answers. A refusal is a 429 `rate_limit_exceeded` (or
 * `budget_exceeded`) with `Retry-After`; every answer to a limited key carries OpenAI's
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers.
 */
import { HttpError } from "@gbt/protocol";
import type { Authenticated } from "../auth/accounts.js";

export interface Limits {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  concurrentRequests?: number | undefined;
  /** Micro-credits an account may spend per `budgetPeriod` (accounts only). */
  budgetMicro?: number | undefined;
  budgetPeriod?: "day" | "month" | undefined;
}

/** Where a subject's limits come from (config defaults, then the admin API's overrides). */
export interface LimitSource {
  forKey(keyId: string): Limits;
  forAccount(accountId: string): Limits;
  /** Bumped whenever a limit changes, so cached subjects re-read theirs. */
  readonly version: number;
}

/** What the budget check reads: the period's settled debits and the account's holds now. */
export interface SpendSource {
  spentSince(accountId: string, sinceMs: number): number;
  heldMicro(accountId: string): number;
}

const MINUTE_MS = 60_000;
const BUCKETS = 60;

/** A ring of the last `limit` admission times: exact requests per sliding minute. */
export class RequestWindow {
  readonly times: Float64Array;
  head = 0;
  count = 0;
  constructor(readonly limit: number) {
    this.times = new Float64Array(limit);
  }
  /** Drops the times that left the window; returns how many remain. */
  used(now: number): number {
    while (this.count > 0 && (this.times[this.head] as number) <= now - MINUTE_MS) {
      this.head = (this.head + 1) % this.limit;
      this.count -= 1;
    }
    return this.count;
  }
  add(now: number): void {
    this.times[(this.head + this.count) % this.limit] = now;
    this.count += 1;
  }
  /** When the oldest admission leaves the window (the next slot frees), ms from now. */
  resetMs(now: number): number {
    return this.count === 0 ? 0 : Math.max(0, (this.times[this.head] as number) + MINUTE_MS - now);
  }
}

/** Tokens in one-second buckets over the last minute. */
class TokenWindow {
  readonly amounts = new Float64Array(BUCKETS);
  readonly seconds = new Float64Array(BUCKETS).fill(-1);
  constructor(readonly limit: number) {}
  used(now: number): number {
    const second = Math.floor(now / 1000);
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if ((this.seconds[i] as number) > second - BUCKETS) sum += this.amounts[i] as number;
    }
    return sum;
  }
  add(now: number, tokens: number): void {
    const second = Math.floor(now / 1000);
    const slot = second % BUCKETS;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.amounts[slot] = 0;
    }
    this.amounts[slot] = (this.amounts[slot] as number) + tokens;
  }
  /** When the oldest tokens in the window leave it, ms from now. */
  resetMs(now: number): number {
    const second = Math.floor(now / 1000);
    let oldest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < BUCKETS; i++) {
      const at = this.seconds[i] as number;
      if (at > second - BUCKETS && (this.amounts[i] as number) > 0 && at < oldest) oldest = at;
    }
    return oldest === Number.POSITIVE_INFINITY ? 0 : Math.max(0, (oldest + BUCKETS) * 1000 - now);
  }
}

interface Subject {
  version: number;
  limited: boolean;
  limits: Limits;
  requests: RequestWindow | null;
  tokens: TokenWindow | null;
  inFlight: number;
  /** The budget's period start and its settled spend, as last read. */
  spent: { since: number; micro: number; readAt: number } | null;
}

/** An admitted request's claim on its limits: `release()` once, when it ends. */
export interface LimitTicket {
  /** The x-ratelimit-* headers to send, as a flat [name, value, …] list; empty when unlimited. */
  headers: string[];
  release(): void;
}

const NO_HEADERS: string[] = [];
const UNLIMITED: LimitTicket = { headers: NO_HEADERS, release: () => {} };

export class RateLimiter {
  readonly #source: LimitSource;
  readonly #spend: SpendSource | null;
  readonly #now: () => number;
  readonly #keys = new Map<string, Subject>();
  readonly #accounts = new Map<string, Subject>();

  constructor(source: LimitSource, spend: SpendSource | null, now: () => number = Date.now) {
    this.#source = source;
    this.#spend = spend;
    this.#now = now;
  }

  /**
   * Admits a request of `tokens` (estimated prompt + max_tokens) costing at most `reserveMicro`,
   * or throws the 429 to answer. Counts it against the key and the account.
   */
  admit(principal: Authenticated, tokens: number, reserveMicro: number): LimitTicket {
    const key = this.#subject(this.#keys, principal.keyId, false);
    const account = this.#subject(this.#accounts, principal.accountId, true);
    if (key === null && account === null) return UNLIMITED;
    const now = this.#now();
    for (const subject of [key, account]) {
      if (subject !== null) this.#check(subject, principal.accountId, reserveMicro, now);
    }
    for (const subject of [key, account]) {
      if (subject === null) continue;
      subject.requests?.add(now);
      subject.tokens?.add(now, tokens);
      subject.inFlight += 1;
    }
    const headers = rateHeaders([key, account], now);
    let released = false;
    return {
      headers,
      release: () => {
        if (released) return;
        released = true;
        if (key !== null) key.inFlight -= 1;
        if (account !== null) account.inFlight -= 1;
      },
    };
  }

  /** The subject for `id`, or null when nothing limits it (the hot path's common case). */
  #subject(map: Map<string, Subject>, id: string, isAccount: boolean): Subject | null {
    const version = this.#source.version;
    let subject = map.get(id);
    if (subject !== undefined && subject.version === version) return subject.limited ? subject : null;
    const limits = isAccount ? this.#source.forAccount(id) : this.#source.forKey(id);
    const limited =
      limits.requestsPerMinute !== undefined ||
      limits.tokensPerMinute !== undefined ||
      limits.concurrentRequests !== undefined ||
      (isAccount && limits.budgetMicro !== undefined);
    if (subject === undefined) {
      subject = { version, limited, limits, requests: null, tokens: null, inFlight: 0, spent: null };
      map.set(id, subject);
    }
    // Updated in place: the tickets of requests in flight release the same object.
    subject.version = version;
    subject.limited = limited;
    subject.limits = limits;
    subject.spent = null;
    const rpm = limits.requestsPerMinute;
    if (rpm === undefined) subject.requests = null;
    else if (subject.requests?.limit !== rpm) subject.requests = new RequestWindow(rpm);
    const tpm = limits.tokensPerMinute;
    if (tpm === undefined) subject.tokens = null;
    else if (subject.tokens?.limit !== tpm) subject.tokens = new TokenWindow(tpm);
    return limited ? subject : null;
  }

  #check(subject: Subject, accountId: string, reserveMicro: number, now: number): void {
    const { limits } = subject;
    if (subject.requests !== null && subject.requests.used(now) >= subject.requests.limit) {
      throw refused(
        "rate_limit_exceeded",
        `Rate limit reached: ${subject.requests.limit} requests per minute.`,
        subject.requests.resetMs(now),
        rateHeaders([subject], now),
      );
    }
    if (subject.tokens !== null && subject.tokens.used(now) >= subject.tokens.limit) {
      throw refused(
        "rate_limit_exceeded",
        `Rate limit reached: ${subject.tokens.limit} tokens per minute (counted as the prompt's bytes / 4 plus max_tokens).`,
        subject.tokens.resetMs(now),
        rateHeaders([subject], now),
      );
    }
    if (limits.concurrentRequests !== undefined && subject.inFlight >= limits.concurrentRequests) {
      throw refused(
        "rate_limit_exceeded",
        `Too many requests at once: at most ${limits.concurrentRequests} concurrent requests.`,
        1000,
        rateHeaders([subject], now),
      );
    }
    if (limits.budgetMicro !== undefined && this.#spend !== null) {
      const since = periodStart(now, limits.budgetPeriod ?? "month");
      if (subject.spent === null || subject.spent.since !== since || now - subject.spent.readAt >= 1000) {
        subject.spent = { since, micro: this.#spend.spentSince(accountId, since), readAt: now };
      }
      const committed = subject.spent.micro + this.#spend.heldMicro(accountId);
      if (committed + reserveMicro > limits.budgetMicro) {
        throw refused(
          "budget_exceeded",
          `The account's budget of ${limits.budgetMicro} micro-credits per ${limits.budgetPeriod ?? "month"} would be exceeded (${committed} spent or held).`,
          nextPeriod(since, limits.budgetPeriod ?? "month") - now,
          NO_HEADERS,
        );
      }
    }
  }
}

/** The x-ratelimit-* headers of the tightest limit among `subjects`. */
function rateHeaders(subjects: (Subject | null)[], now: number): string[] {
  let requests: RequestWindow | null = null;
  let tokens: TokenWindow | null = null;
  for (const subject of subjects) {
    if (
      subject?.requests &&
      (requests === null || remainingRequests(subject.requests, now) < remainingRequests(requests, now))
    ) {
      requests = subject.requests;
    }
    if (
      subject?.tokens &&
      (tokens === null || subject.tokens.limit - subject.tokens.used(now) < tokens.limit - tokens.used(now))
    ) {
      tokens = subject.tokens;
    }
  }
  if (requests === null && tokens === null) return NO_HEADERS;
  const headers: string[] = [];
  if (requests !== null) {
    headers.push(
      "x-ratelimit-limit-requests",
      String(requests.limit),
      "x-ratelimit-remaining-requests",
      String(remainingRequests(requests, now)),
      "x-ratelimit-reset-requests",
      duration(requests.resetMs(now)),
    );
  }
  if (tokens !== null) {
    headers.push(
      "x-ratelimit-limit-tokens",
      String(tokens.limit),
      "x-ratelimit-remaining-tokens",
      String(Math.max(0, tokens.limit - tokens.used(now))),
      "x-ratelimit-reset-tokens",
      duration(tokens.resetMs(now)),
    );
  }
  return headers;
}

function remainingRequests(window: RequestWindow, now: number): number {
  return Math.max(0, window.limit - window.used(now));
}

/** OpenAI's reset format: `1s`, `6m0s`, `250ms`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
}

function refused(
  code: "rate_limit_exceeded" | "budget_exceeded",
  message: string,
  retryMs: number,
  rate: string[],
): HttpError {
  const headers: Record<string, string> = { "retry-after": String(Math.max(1, Math.ceil(retryMs / 1000))) };
  for (let i = 0; i < rate.length; i += 2) headers[rate[i] as string] = rate[i + 1] as string;
  return new HttpError(code, message, null, headers);
}

/** The start of the UTC day or month holding `now`. */
export function periodStart(now: number, period: "day" | "month"): number {
  const date = new Date(now);
  return period === "day"
    ? Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate())
    : Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
}

function nextPeriod(start: number, period: "day" | "month"): number {
  const date = new Date(start);
  return period === "day" ? start + 86_400_000 : Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}
