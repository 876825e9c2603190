/**
 * Admission of a pooled request (chat, completions, embeddings, responses): everything the hot
 * path checks before it routes, all in memory. The API key (cached hash lookup), the request's
 * minimum trust tier, one JSON.parse of the body (model, and what its route reads: stream, the
 * completion-token bound, the capabilities it needs; the node validates the rest and its 400 comes
 * back as it is), the model's price and a credit hold of the request's worst-case cost.
 */
import type { IncomingMessage } from "node:http";
import { bearerToken, HttpError, isGbtError, type TrustTier, trustTiers } from "@gbt/protocol";
import type { AccountStore, Authenticated } from "../auth/accounts.js";
import type { CreditHold, CreditHolds } from "../billing/credit-holds.js";
import { costMicro, type ModelPrice, priceFor } from "../billing/pricing.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { LimitTicket, RateLimiter } from "../limits/rate-limiter.js";
import { type Capability, requestNeeds } from "../pool/capabilities.js";
import type { PoolInstance } from "../pool/pool-instance.js";
import { tierNamed } from "../trust-tier.js";
import type { ProxyRoute } from "./proxy-routes.js";

/** The header a consumer sets to route only to nodes of at least this trust tier. */
export const MIN_TIER_HEADER = "x-gbt-min-tier";

/** A finished, non-streamed request as the sampler sees it (after the consumer has its answer). */
export interface ObservedCompletion {
  requestId: string;
  model: string;
  instanceId: string;
  /** The request body as the consumer sent it. */
  body: Buffer;
  /** The node's whole response body. */
  response: Buffer;
}

/** The request's account and the minimum tier its header asked for (`community` without one). */
export interface TierRequest {
  accountId: string;
  minTier: TrustTier;
}

/** A request narrowed to instances of at least `tier`. */
export interface TierAdmission {
  tier: TrustTier;
  allows: (instance: PoolInstance) => boolean;
}

/**
 * A feature's say in which instances a request may use (verification: the larger of the header's
 * and the account's minimum tier, against each instance's tier); undefined lets it use any.
 */
export type RequestAdmission = (request: TierRequest) => TierAdmission | undefined;

/** The few fields of the body the gateway reads, and the route it came by. */
export interface ParsedRequest {
  route: ProxyRoute;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** The completion-token bound of the hold and the bill (0 on embeddings). */
  maxTokens: number;
  /** What the serving instance's model must be able to do. */
  needs: readonly Capability[];
}

export interface AdmissionDependencies {
  config: GatewayConfig;
  accounts: Pick<AccountStore, "authenticate">;
  reservations: CreditHolds;
  maxBodyBytes: number;
  /** Which instances a request may use; without it, any tier above `community` matches no instance. */
  admit?: RequestAdmission;
  /** The door's limits per key and account (absent: none). */
  limiter?: RateLimiter;
}

/** An admitted request: who pays, what it asks, and the credits held for it. */
export interface AdmittedRequest {
  principal: Authenticated;
  /** The body, forwarded byte for byte. */
  raw: Buffer;
  request: ParsedRequest;
  price: ModelPrice;
  /** Released by the caller unless the request is handed over for settlement. */
  hold: CreditHold;
  /** The instances this request may use, when its tier narrows them. */
  tier: TierAdmission | undefined;
  /** Its claim on the key's and account's limits (released by the caller when the request ends). */
  limits: LimitTicket;
}

/** Who is asking, and for which instances: checked from the headers before the body is read. */
export interface Authorized {
  principal: Authenticated;
  tier: TierAdmission | undefined;
}

/**
 * The header checks of a pooled request (401 without a valid key, 400 on an unknown tier). Split
 * from {@link admitBody} so that the hot path (pool-proxy.ts) stays on one async frame and awaits
 * only the body read itself.
 */
export function authorizeRequest(deps: AdmissionDependencies, req: IncomingMessage): Authorized {
  const key = bearerToken(req.headers.authorization);
  const principal = key === undefined ? null : deps.accounts.authenticate(key);
  if (principal === null) {
    req.resume();
    throw new HttpError(
      "invalid_api_key",
      "Missing or invalid API key (Authorization: Bearer gbt_gk_…).",
      null,
      {
        "www-authenticate": "Bearer",
      },
    );
  }
  const minTier = requestedTier(req);
  const tier = deps.admit
    ? deps.admit({ accountId: principal.accountId, minTier })
    : minTier === "community"
      ? undefined
      : { tier: minTier, allows: () => false };
  return { principal, tier };
}

/** The body checks (400, 404 on a model without a price, 402 without credits), then the credit hold. */
export function admitBody(
  deps: AdmissionDependencies,
  authorized: Authorized,
  route: ProxyRoute,
  raw: Buffer,
): AdmittedRequest {
  const parsed = parseRequest(route, raw, deps.config.defaultMaxTokens);
  let price: ModelPrice;
  try {
    price = priceFor(deps.config.prices, parsed.model);
  } catch {
    throw new HttpError("model_not_found", `Model ${parsed.model} has no price here.`, "model");
  }
  // A prompt token is at least one byte of the body, so the body size bounds the prompt.
  const reserve = costMicro(price, raw.length, parsed.maxTokens);
  // Tokens counted against a per-minute limit as OpenAI counts them: the prompt's bytes / 4 and max_tokens.
  const limits =
    deps.limiter?.admit(authorized.principal, Math.ceil(raw.length / 4) + parsed.maxTokens, reserve) ??
    NO_LIMITS;
  let hold: CreditHold;
  try {
    hold = deps.reservations.reserve(authorized.principal.accountId, reserve);
  } catch (error) {
    limits.release();
    if (isGbtError(error) && error.code === "INSUFFICIENT_FUNDS") {
      throw new HttpError(
        "insufficient_credits",
        `${error.message} Lower max_tokens or add credits to the account.`,
      );
    }
    throw error;
  }
  return {
    principal: authorized.principal,
    raw,
    request: parsed,
    price,
    hold,
    tier: authorized.tier,
    limits,
  };
}

const NO_LIMITS: LimitTicket = { headers: [], release: () => {} };

const invalid = (message: string, param: string | null) => new HttpError("invalid_value", message, param);

/** The few fields the gateway needs; the node validates the rest (its 400 comes back as it is). */
function parseRequest(route: ProxyRoute, raw: Buffer, defaultMaxTokens: number): ParsedRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new HttpError("invalid_json", "The request body is not valid JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid("The request body must be a JSON object.", null);
  }
  const b = body as Record<string, unknown>;
  const model = b.model;
  if (typeof model !== "string" || model.length === 0 || model.length > 256) {
    throw invalid("`model` must be a non-empty string (see GET /v1/models).", "model");
  }
  const fields = route.fields(b, defaultMaxTokens);
  return {
    route,
    model,
    stream: fields.stream,
    includeUsage: fields.includeUsage,
    maxTokens: fields.maxTokens,
    needs: requestNeeds(route.name, b),
  };
}

/** The tier the `x-gbt-min-tier` header asks for; an unknown tier name is the consumer's mistake (400). */
function requestedTier(req: IncomingMessage): TrustTier {
  const header = req.headers[MIN_TIER_HEADER];
  if (header === undefined) return "community";
  const value = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase() ?? "";
  const tier = tierNamed(value);
  if (tier === undefined) {
    req.resume();
    throw new HttpError(
      "invalid_value",
      `${MIN_TIER_HEADER} must be one of ${trustTiers.join(", ")}; got "${value.slice(0, 32)}".`,
      MIN_TIER_HEADER,
    );
  }
  return tier;
}
