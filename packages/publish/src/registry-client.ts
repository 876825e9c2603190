/**
 * A client of the gateway's model registry (see the wire contract in @gbt/protocol). Requests
 * that fail on the network or with a 5xx are retried with backoff (a `Retry-After` is honoured);
 * a 4xx is the gateway's answer and is never retried. Every answer is parsed with its schema.
 */
import { randomUUID } from "node:crypto";
import {
  type ErrorCode,
  errorCodes,
  GATEWAY_INFO_PATH,
  type GatewayInfo,
  GbtError,
  gatewayInfoSchema,
  IDEMPOTENCY_KEY_HEADER,
  REGISTRY_MODELS_PATH,
  type RegistryEntry,
  type RegistryModel,
  type RegistryStatus,
  type RegistrySubmitResponse,
  registryListSchema,
  registryModelPath,
  registryModelSchema,
  registrySubmitResponseSchema,
  type SignedModelManifest,
} from "@gbt/protocol";
import type { z } from "zod";

export const DEFAULT_REGISTRY_ATTEMPTS = 5;
export const DEFAULT_REGISTRY_TIMEOUT_MS = 30_000;

export interface RegistryClientOptions {
  /** The gateway's base URL (http://host:port). */
  gatewayUrl: string;
  /** Admin token, for approve/delist. Never logged. */
  adminToken?: string;
  /** Tries per request (network errors and 5xx only). */
  attempts?: number;
  timeoutMs?: number;
  /** Told before each retry (for stderr). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The gateway's answer as an error code, when it names one gbt knows. */
function codeOf(body: unknown, status: number): ErrorCode {
  const raw = (body as { error?: { code?: unknown } } | null)?.error?.code;
  const upper = typeof raw === "string" ? raw.toUpperCase() : "";
  if (upper in errorCodes) return upper as ErrorCode;
  if (status === 401 || status === 403) return raw === "policy_denied" ? "POLICY_DENIED" : "UNAUTHORIZED";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "CONFLICT";
  return "INVALID_INPUT";
}

export class RegistryClient {
  readonly #options: RegistryClientOptions;
  readonly #base: URL;

  constructor(options: RegistryClientOptions) {
    this.#options = options;
    try {
      this.#base = new URL(options.gatewayUrl);
      if (this.#base.protocol !== "http:" && this.#base.protocol !== "https:") throw new Error("scheme");
    } catch (cause) {
      throw new GbtError("USAGE", `The gateway URL '${options.gatewayUrl}' is not an http(s) URL.`, {
        hint: "Pass --gateway http://host:port (or set GBT_GATEWAY_URL).",
        cause,
      });
    }
  }

  get gatewayUrl(): string {
    return this.#base.origin;
  }

  /** The gateway's address and chain (what manifests are signed for). */
  async info(): Promise<GatewayInfo> {
    return this.#request("GET", GATEWAY_INFO_PATH, undefined, gatewayInfoSchema);
  }

  /** Submits a signed manifest; the idempotency key is the same on every retry of this call. */
  async submit(
    signed: SignedModelManifest,
    idempotencyKey: string = randomUUID(),
  ): Promise<RegistrySubmitResponse> {
    return this.#request("POST", REGISTRY_MODELS_PATH, signed, registrySubmitResponseSchema, {
      [IDEMPOTENCY_KEY_HEADER]: idempotencyKey,
    });
  }

  async get(name: string, version: string): Promise<RegistryModel> {
    return this.#request("GET", registryModelPath(name, version), undefined, registryModelSchema);
  }

  async list(filter: { status?: RegistryStatus; name?: string } = {}): Promise<RegistryEntry[]> {
    const query = new URLSearchParams();
    if (filter.status) query.set("status", filter.status);
    if (filter.name) query.set("name", filter.name);
    const suffix = query.size > 0 ? `?${query}` : "";
    return (await this.#request("GET", `${REGISTRY_MODELS_PATH}${suffix}`, undefined, registryListSchema))
      .data;
  }

  /** Admin: approve or delist a version. */
  async setStatus(
    name: string,
    version: string,
    action: "approve" | "delist",
    reason?: string,
  ): Promise<RegistryModel> {
    if (!this.#options.adminToken) {
      throw new GbtError("MISSING_INPUT", "No admin token to change a model's status.", {
        hint: "Pass --admin-token-file PATH or set GBT_GATEWAY_ADMIN_TOKEN.",
      });
    }
    return this.#request(
      "POST",
      `${registryModelPath(name, version)}/${action}`,
      reason === undefined ? {} : { reason },
      registryModelSchema,
    );
  }

  async #request<T>(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const attempts = Math.max(1, this.#options.attempts ?? DEFAULT_REGISTRY_ATTEMPTS);
    const doFetch = this.#options.fetch ?? fetch;
    const sleep = this.#options.sleep ?? defaultSleep;
    const url = new URL(path, this.#base);
    let lastReason = "";
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let response: Response;
      try {
        response = await doFetch(url, {
          method,
          headers: {
            accept: "application/json",
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...(this.#options.adminToken ? { authorization: `Bearer ${this.#options.adminToken}` } : {}),
            ...headers,
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(this.#options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS),
        });
      } catch (cause) {
        lastReason =
          (cause as Error).name === "TimeoutError"
            ? "timed out"
            : `network error (${(cause as Error).message})`;
        if (attempt < attempts) {
          const delayMs = backoff(attempt);
          this.#options.onRetry?.({ attempt, delayMs, reason: lastReason });
          await sleep(delayMs);
        }
        continue;
      }
      const text = await response.text().catch(() => "");
      let json: unknown = null;
      try {
        json = text === "" ? null : JSON.parse(text);
      } catch {
        json = null;
      }
      if (response.status >= 500) {
        lastReason = `HTTP ${response.status}`;
        if (attempt < attempts) {
          const delayMs = retryAfter(response) ?? backoff(attempt);
          this.#options.onRetry?.({ attempt, delayMs, reason: lastReason });
          await sleep(delayMs);
        }
        continue;
      }
      if (!response.ok) {
        const message = (json as { error?: { message?: unknown } } | null)?.error?.message;
        throw new GbtError(
          codeOf(json, response.status),
          typeof message === "string"
            ? `The registry refused: ${message}`
            : `The registry answered HTTP ${response.status}.`,
          { details: { status: response.status, url: url.pathname } },
        );
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        throw new GbtError(
          "GATEWAY_UNREACHABLE",
          `${url.origin} answered ${method} ${url.pathname} with an unexpected body.`,
          {
            details: {
              issues: parsed.error.issues
                .slice(0, 3)
                .map((i) => ({ path: i.path.join("."), message: i.message })),
            },
            hint: "Check that --gateway points at a gbt gateway with the model registry.",
          },
        );
      }
      return parsed.data;
    }
    throw new GbtError(
      "GATEWAY_UNREACHABLE",
      `The gateway at ${url.origin} did not answer (${lastReason}) after ${attempts} tries.`,
      {
        details: { url: url.origin, attempts },
        hint: "Check --gateway (or GBT_GATEWAY_URL) and that the gateway runs; the command is safe to rerun (a publish is idempotent).",
      },
    );
  }
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
