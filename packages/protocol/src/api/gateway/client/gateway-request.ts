/**
 * One request to a gateway, the way every action of the gateway client makes it: the URL built
 * from a path of paths.ts, the credential the call needs, a timeout on every attempt, the answer
 * read up to a byte bound and parsed with its schema. What can go wrong becomes a GbtError a user
 * can act on: no answer (GATEWAY_UNREACHABLE, with the URL and a next step), a refusal (the
 * server's message under its code, see gateway-error.ts), or an answer that is not what a gbt
 * gateway sends (INVALID_OBJECT: not JSON, too large, or the wrong shape; never a cast).
 *
 * Idempotent calls may ask for retries: a network failure or a 5xx is retried with backoff
 * (250 ms doubling to 8 s, ±20% jitter, a `Retry-After` honoured up to 30 s); a 4xx is the
 * gateway's answer and never retried.
 */
import type { z } from "zod";
import { readBounded } from "../../../bounded-read.js";
import { type ErrorCode, GbtError } from "../../../errors.js";
import { defaultGatewayHints, type GatewayAuth, type GatewayHints, gatewayRefusal } from "./gateway-error.js";

/** Tries of a retried call unless the client says otherwise. */
export const DEFAULT_GATEWAY_ATTEMPTS = 5;
/** Per attempt, unless the call or the client says otherwise. */
export const DEFAULT_GATEWAY_TIMEOUT_MS = 10_000;
/** The largest answer read, unless the call says otherwise. */
export const DEFAULT_GATEWAY_MAX_BYTES = 8 * 1024 * 1024;

export interface GatewayClientOptions {
  /** The gateway's base URL (http://host:port). */
  url: string;
  /** For the admin API. Never logged. */
  adminToken?: string | undefined;
  /** A consumer API key, for the consumer API. Never logged. */
  apiKey?: string | undefined;
  fetch?: typeof fetch;
  /** Per attempt; overrides each call's own default. */
  timeoutMs?: number;
  /** Tries of a retried call (network failures and 5xx of idempotent calls only). */
  attempts?: number;
  /** Told before each retry (for stderr). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  sleep?: (ms: number) => Promise<void>;
  /** Next steps naming the caller's own flags, for the errors every call can meet. */
  hints?: GatewayHints;
}

/** One call of the gateway API, as an action describes it. */
export interface GatewayCall<T> {
  method?: "GET" | "POST" | "PUT" | "DELETE";
  /** A path of paths.ts. */
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Default "none". */
  auth?: GatewayAuth;
  schema: z.ZodType<T>;
  /** What the answer is, for messages: "node list", "payout proof". */
  what: string;
  /** Non-2xx statuses whose body is still this call's answer (the ledger check's 500). */
  answerStatuses?: readonly number[];
  /** Retry network failures and 5xx: idempotent calls only. */
  retry?: boolean;
  /** `The <refusedBy> refused: <server message>` on a refusal. */
  refusedBy?: string;
  /** Next steps by error code, for refusals this call explains better than the generic ones. */
  hints?: Partial<Record<ErrorCode, string>>;
  timeoutMs?: number;
  maxBytes?: number;
}

/** What every action is given: the gateway's URL and one way to call it. */
export interface GatewayTransport {
  /** The base URL as given. */
  readonly url: string;
  request<T>(call: GatewayCall<T>): Promise<T>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createGatewayTransport(options: GatewayClientOptions): GatewayTransport {
  let base: URL;
  try {
    base = new URL(options.url);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error("not http(s)");
  } catch (cause) {
    throw new GbtError("USAGE", `The gateway URL '${options.url.slice(0, 200)}' is not an http(s) URL.`, {
      hint: "Pass the gateway's base URL, e.g. http://127.0.0.1:8080.",
      cause,
    });
  }
  const hints = options.hints ?? {};
  const fetchFn = options.fetch ?? globalThis.fetch;
  const sleep = options.sleep ?? defaultSleep;
  return {
    url: options.url,
    request: (call) => request(call),
  };

  async function request<T>(call: GatewayCall<T>): Promise<T> {
    const method = call.method ?? "GET";
    const auth = call.auth ?? "none";
    const url = new URL(call.path, base);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {
      accept: "application/json",
      ...(call.body === undefined ? {} : { "content-type": "application/json" }),
      ...credentialHeader(auth, call.what),
      ...call.headers,
    };
    const attempts = call.retry ? Math.max(1, options.attempts ?? DEFAULT_GATEWAY_ATTEMPTS) : 1;
    const timeoutMs = options.timeoutMs ?? call.timeoutMs ?? DEFAULT_GATEWAY_TIMEOUT_MS;
    const maxBytes = call.maxBytes ?? DEFAULT_GATEWAY_MAX_BYTES;
    const refused = { path: url.pathname, auth, refusedBy: call.refusedBy, hints: call.hints };
    let failure: { reason: string; cause: unknown } = { reason: "", cause: undefined };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const retry = async (delayMs: number) => {
        if (attempt >= attempts) return;
        options.onRetry?.({ attempt, delayMs, reason: failure.reason });
        await sleep(delayMs);
      };
      const signal = AbortSignal.timeout(timeoutMs);
      let status: number;
      let retryAfterMs: number | undefined;
      let bytes: Buffer | "too large";
      try {
        const response = await fetchFn(url, {
          method,
          headers,
          ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
          signal,
        });
        status = response.status;
        retryAfterMs = retryAfter(response);
        bytes = await readBounded(response.body, maxBytes, {
          declaredLength: response.headers.get("content-length"),
        });
      } catch (cause) {
        failure = { reason: describeFailure(cause, timeoutMs), cause };
        await retry(backoff(attempt));
        continue;
      }
      if (bytes === "too large") {
        throw new GbtError("INVALID_OBJECT", `The gateway's ${call.what} is over ${maxBytes} bytes.`, {
          details: { path: url.pathname, maxBytes },
          hint: hints.shape ?? defaultGatewayHints.shape,
        });
      }
      const json = parseJson(bytes);
      const isAnswer = (status >= 200 && status < 300) || (call.answerStatuses?.includes(status) ?? false);
      if (isAnswer && !(status >= 300 && isErrorBody(json))) return parseAnswer(call, json, url.pathname);
      if (status >= 500 && attempt < attempts) {
        failure = { reason: `HTTP ${status}`, cause: undefined };
        await retry(retryAfterMs ?? backoff(attempt));
        continue;
      }
      throw gatewayRefusal(status, json === notJson ? undefined : json, refused, hints);
    }
    throw new GbtError(
      "GATEWAY_UNREACHABLE",
      attempts > 1
        ? `No gateway answers at ${options.url} (${failure.reason}) after ${attempts} tries.`
        : `No gateway answers at ${options.url}.`,
      {
        details: { url: options.url, reason: failure.reason, ...(attempts > 1 ? { attempts } : {}) },
        hint: hints.unreachable ?? defaultGatewayHints.unreachable,
        cause: failure.cause,
      },
    );
  }

  function credentialHeader(auth: GatewayAuth, what: string): Record<string, string> {
    if (auth === "none") return {};
    const secret = auth === "admin" ? options.adminToken : options.apiKey;
    if (!secret) {
      throw new GbtError(
        "MISSING_INPUT",
        `No ${auth === "admin" ? "admin token" : "API key"} to read or change the gateway's ${what}.`,
        {
          hint:
            auth === "admin"
              ? (hints.adminToken ?? defaultGatewayHints.adminToken)
              : (hints.apiKey ?? defaultGatewayHints.apiKey),
        },
      );
    }
    return { authorization: `Bearer ${secret}` };
  }

  function parseAnswer<T>(call: GatewayCall<T>, json: unknown, path: string): T {
    if (json === notJson) {
      throw new GbtError("INVALID_OBJECT", `The gateway's ${call.what} is not JSON.`, {
        details: { path },
        hint: hints.shape ?? defaultGatewayHints.shape,
      });
    }
    const parsed = call.schema.safeParse(json);
    if (!parsed.success) {
      throw new GbtError("INVALID_OBJECT", `The gateway's ${call.what} is not in the expected shape.`, {
        details: {
          path,
          issues: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
        },
        hint: hints.shape ?? defaultGatewayHints.shape,
      });
    }
    return parsed.data;
  }
}

const notJson: unique symbol = Symbol("not JSON");

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return notJson;
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return notJson;
  }
}

function isErrorBody(json: unknown): boolean {
  return typeof json === "object" && json !== null && "error" in json;
}

function describeFailure(cause: unknown, timeoutMs: number): string {
  const error = cause as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (error?.name === "TimeoutError") return `timed out after ${(timeoutMs / 1000).toFixed(1)} s`;
  const code = error?.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (typeof code === "string") return `network error (${code})`;
  return `network error (${error?.cause?.message ?? error?.message ?? String(cause)})`;
}

/** 250 ms, 500 ms, 1 s, 2 s… capped at 8 s, with ±20% jitter so retrying CI jobs spread out. */
function backoff(attempt: number): number {
  const base = Math.min(8_000, 250 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function retryAfter(response: Response): number | undefined {
  const value = Number(response.headers.get("retry-after"));
  return Number.isFinite(value) && value > 0 ? Math.min(value, 30) * 1000 : undefined;
}
