/**
 * The HTTP face of gbt's errors: one table of every error code gbt's HTTP APIs (node, agent,
 * gateway) answer with, its status and its OpenAI error type, and the one mapping from GbtError
 * codes to those wire codes. Every server answers `{"error": {message, type, param, code}}` from
 * here, the hot path included; anything unknown becomes a 500 that leaks no internals. Also the
 * two body helpers every server uses (bounded read, JSON answer).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type ErrorCode, GbtError, isGbtError } from "./errors.js";

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "insufficient_quota"
  | "rate_limit_error"
  | "server_error"
  | "api_error";

/** Every wire error code: [HTTP status, OpenAI error type, the GbtError code it belongs to]. */
export const httpErrorCodes = {
  invalid_json: [400, "invalid_request_error", "INVALID_INPUT"],
  invalid_value: [400, "invalid_request_error", "INVALID_INPUT"],
  invalid_object: [400, "invalid_request_error", "INVALID_OBJECT"],
  invalid_address: [400, "invalid_request_error", "INVALID_ADDRESS"],
  invalid_node: [400, "invalid_request_error", "INVALID_INPUT"],
  /** A node registered a URL the gateway will not reach (scheme, credentials, path, or an internal address). */
  invalid_node_url: [400, "invalid_request_error", "INVALID_INPUT"],
  wrong_node: [400, "invalid_request_error", "INVALID_INPUT"],
  manifest_invalid: [400, "invalid_request_error", "MANIFEST_INVALID"],
  context_length_exceeded: [400, "invalid_request_error", "CONTEXT_LENGTH_EXCEEDED"],
  /** A field the model cannot honour on this node (its capabilities), whose absence would change the answer. */
  unsupported_parameter: [400, "invalid_request_error", "INVALID_INPUT"],
  /** No instance of the model has what the request needs (tools, structured output, vision…). */
  model_not_capable: [400, "invalid_request_error", "INVALID_INPUT"],
  invalid_api_key: [401, "invalid_request_error", "UNAUTHORIZED"],
  invalid_admin_token: [401, "authentication_error", "UNAUTHORIZED"],
  signature_invalid: [401, "authentication_error", "SIGNATURE_INVALID"],
  wrong_domain: [401, "authentication_error", "WRONG_DOMAIN"],
  wrong_chain: [401, "authentication_error", "WRONG_CHAIN"],
  wrong_audience: [401, "authentication_error", "WRONG_AUDIENCE"],
  expired: [401, "authentication_error", "EXPIRED"],
  not_yet_valid: [401, "authentication_error", "NOT_YET_VALID"],
  payload_hash_mismatch: [401, "authentication_error", "PAYLOAD_HASH_MISMATCH"],
  insufficient_credits: [402, "insufficient_quota", "INSUFFICIENT_FUNDS"],
  unknown_signer: [403, "permission_error", "UNKNOWN_SIGNER"],
  /** The relay carries a node only the jobs of owners it published. */
  owner_not_allowed: [403, "permission_error", "UNKNOWN_SIGNER"],
  policy_denied: [403, "permission_error", "POLICY_DENIED"],
  /** A node's stake on chain is below the gateway's `routing.minStakeGbt`. */
  insufficient_stake: [403, "permission_error", "POLICY_DENIED"],
  /** The node's setup page and claim answer loopback (or, with --setup-host, LAN) peers only. */
  setup_loopback_only: [403, "permission_error", "POLICY_DENIED"],
  /** The node has no owner: it takes no pooled traffic until claimed. */
  claim_required: [403, "permission_error", "CLAIM_REQUIRED"],
  /** A claim signed for another node. */
  claim_wrong_node: [400, "invalid_request_error", "INVALID_OBJECT"],
  /** A claim for a code this node does not show (another node's, or one rotated by an earlier claim). */
  claim_wrong_code: [400, "invalid_request_error", "INVALID_OBJECT"],
  /** The node is already claimed. */
  already_claimed: [409, "invalid_request_error", "CONFLICT"],
  not_found: [404, "invalid_request_error", "NOT_FOUND"],
  model_not_found: [404, "invalid_request_error", "MODEL_NOT_FOUND"],
  unknown_instance: [404, "invalid_request_error", "NOT_FOUND"],
  unknown_node: [404, "invalid_request_error", "NOT_FOUND"],
  method_not_allowed: [405, "invalid_request_error", "USAGE"],
  replayed: [409, "invalid_request_error", "REPLAYED"],
  conflict: [409, "invalid_request_error", "CONFLICT"],
  request_too_large: [413, "invalid_request_error", "INVALID_INPUT"],
  /** The consumer closed the connection first (nginx's 499): answered to nobody, but logged and counted. */
  client_closed_request: [499, "invalid_request_error", "INTERRUPTED"],
  over_capacity: [429, "rate_limit_error", "BUSY"],
  /** Over a key's or an account's requests, tokens or concurrency limit (x-ratelimit-* headers say which). */
  rate_limit_exceeded: [429, "rate_limit_error", "BUSY"],
  /** Over an account's spend budget for the period. */
  budget_exceeded: [429, "insufficient_quota", "INSUFFICIENT_FUNDS"],
  /** Over a rate limit: try again after Retry-After seconds. */
  rate_limited: [429, "rate_limit_error", "BUSY"],
  internal_error: [500, "server_error", "INTERNAL"],
  backend_unreachable: [502, "server_error", "BACKEND_UNREACHABLE"],
  upstream_failed: [502, "server_error", "NODE_UNREACHABLE"],
  node_unreachable: [502, "server_error", "NODE_UNREACHABLE"],
  /** A link registration that does not match the link it came over (another node, a URL). */
  link_mismatch: [400, "invalid_request_error", "INVALID_OBJECT"],
  chain_unreachable: [502, "api_error", "CHAIN_UNREACHABLE"],
  transaction_reverted: [502, "api_error", "TRANSACTION_REVERTED"],
  insufficient_funds: [502, "api_error", "INSUFFICIENT_FUNDS"],
  unauthorized: [502, "api_error", "UNAUTHORIZED"],
  no_capacity: [503, "server_error", "BUSY"],
  node_stale: [503, "server_error", "NODE_UNREACHABLE"],
  tier_unavailable: [503, "server_error", "BUSY"],
  shutting_down: [503, "server_error", "BUSY"],
  draining: [503, "server_error", "BUSY"],
  /** The chain could not be read to check a node's stake: retry. */
  stake_unavailable: [503, "server_error", "CHAIN_UNREACHABLE"],
} as const satisfies Record<string, readonly [number, OpenAIErrorType, ErrorCode]>;
export type HttpErrorCode = keyof typeof httpErrorCodes;

/**
 * Which wire code a GbtError becomes. A surface is who answers: the gateway's consumer and admin
 * APIs (the default), a node, or the gateway's on-chain actions (settlement), where the chain's
 * refusal is an upstream failure, not the caller's. Codes absent here become a 500 named after them.
 */
const fromGbtError: Partial<Record<ErrorCode, HttpErrorCode>> = {
  INVALID_OBJECT: "invalid_object",
  INVALID_INPUT: "invalid_value",
  INVALID_ADDRESS: "invalid_address",
  MANIFEST_INVALID: "manifest_invalid",
  CONTEXT_LENGTH_EXCEEDED: "context_length_exceeded",
  SIGNATURE_INVALID: "signature_invalid",
  UNKNOWN_SIGNER: "unknown_signer",
  WRONG_DOMAIN: "wrong_domain",
  WRONG_CHAIN: "wrong_chain",
  WRONG_AUDIENCE: "wrong_audience",
  EXPIRED: "expired",
  NOT_YET_VALID: "not_yet_valid",
  PAYLOAD_HASH_MISMATCH: "payload_hash_mismatch",
  UNAUTHORIZED: "invalid_api_key",
  REPLAYED: "replayed",
  NOT_FOUND: "not_found",
  MODEL_NOT_FOUND: "model_not_found",
  INSUFFICIENT_FUNDS: "insufficient_credits",
  POLICY_DENIED: "policy_denied",
  CONFLICT: "conflict",
  BUSY: "no_capacity",
  BACKEND_UNREACHABLE: "backend_unreachable",
  NODE_UNREACHABLE: "node_unreachable",
  CHAIN_UNREACHABLE: "chain_unreachable",
  TRANSACTION_REVERTED: "transaction_reverted",
};
export type HttpSurface = "gateway" | "node" | "chain";
const surfaceOverrides: Record<HttpSurface, Partial<Record<ErrorCode, HttpErrorCode>>> = {
  gateway: {},
  // A busy node answers 429: the gateway cools it down and tries another, it is not a failure.
  node: { BUSY: "over_capacity" },
  chain: { INSUFFICIENT_FUNDS: "insufficient_funds", UNAUTHORIZED: "unauthorized" },
};

/** An error answered over HTTP: a GbtError whose wire code, status and type come from the table. */
export class HttpError extends GbtError {
  readonly status: number;
  readonly type: string;
  readonly wireCode: string;

  constructor(
    code: HttpErrorCode,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
    /** The code the body names, when it is not `code` itself (a 500 named after its GbtError). */
    wireCode: string = code,
  ) {
    const [status, type, gbtCode] = httpErrorCodes[code];
    super(gbtCode, message);
    this.status = status;
    this.type = type;
    this.wireCode = wireCode;
  }
}

/** Builds the HttpError of a wire code (`httpError("invalid_json", "…")`). */
export function httpError(
  code: HttpErrorCode,
  message: string,
  options: { param?: string | null; headers?: Record<string, string> } = {},
): HttpError {
  return new HttpError(code, message, options.param ?? null, options.headers ?? {});
}

/** The wire code a GbtError code becomes on `surface`, if it has one. */
export function httpCodeOf(code: ErrorCode, surface: HttpSurface = "gateway"): HttpErrorCode | undefined {
  return surfaceOverrides[surface][code] ?? fromGbtError[code];
}

/** Converts anything thrown inside a handler into an HttpError (unknown errors become 500s). */
export function toHttpError(
  error: unknown,
  surface: HttpSurface = "gateway",
  component = "server",
): HttpError {
  if (error instanceof HttpError) return error;
  if (isGbtError(error)) {
    const code = httpCodeOf(error.code, surface);
    if (code) {
      const [, , gbtCode] = httpErrorCodes[code];
      const headers: Record<string, string> = gbtCode === "BUSY" ? { "retry-after": "1" } : {};
      return new HttpError(code, error.message, null, headers);
    }
    // A code with no HTTP meaning of its own: a 500 named after it.
    return new HttpError("internal_error", error.message, null, {}, error.code.toLowerCase());
  }
  return new HttpError("internal_error", `Internal error in the ${component}.`);
}

export function errorBody(error: HttpError): OpenAIErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.wireCode } };
}

/** Answers with the error, or cuts the connection when the response has already started. */
export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(error));
  res.writeHead(error.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...error.headers,
  });
  res.end(body);
}

/** Answers with a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** Reads a request body of at most `limit` bytes; 413 `request_too_large` beyond it. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError("request_too_large", `Request body over ${limit} bytes.`);
}

/**
 * Throws 400 `invalid_value` when a request path holds a malformed percent-escape (`%E0%A4%A`,
 * `%zz`): every server of gbt refuses it the same way, rather than routing it as some other path.
 */
export function assertDecodablePath(pathname: string): void {
  if (!pathname.includes("%")) return;
  try {
    decodeURIComponent(pathname);
  } catch {
    throw new HttpError("invalid_value", "The request path has a malformed percent-escape.");
  }
}
