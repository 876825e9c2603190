/**
 * How a gateway's refusal becomes a GbtError. The gateway answers every failure with an
 * OpenAI-style body `{"error": {message, type, param, code}}`; its wire code names the GbtError
 * code through the one HTTP error table (http-errors.ts), and the server's own message is kept,
 * so a user reads what the gateway said, under the exit code of its class. Answers without such
 * a body fall back on their status. A gateway's internal failure is not the caller's bug: it is
 * reported as the gateway answering badly (GATEWAY_UNREACHABLE), like any other 5xx it did not name.
 */
import { type ErrorCode, errorCodes, GbtError } from "../../../errors.js";
import { type HttpErrorCode, httpErrorCodes } from "../../../http-errors.js";
import { gatewayErrorBodySchema } from "../schemas.js";

/** Who a call authenticates as: the admin token, a consumer API key, or nobody. */
export type GatewayAuth = "admin" | "apiKey" | "none";

/** Next steps the caller knows better than the client (they name the caller's own flags). */
export interface GatewayHints {
  /** When no gateway answers at the URL. */
  unreachable?: string;
  /** When the admin token is missing or refused. */
  adminToken?: string;
  /** When the API key is missing or refused. */
  apiKey?: string;
  /** When the answer is not what a gbt gateway sends. */
  shape?: string;
}

export const defaultGatewayHints: Required<GatewayHints> = {
  unreachable: "Check the gateway URL and that the gateway runs (`gbt gateway serve`, or `gbt up`).",
  adminToken: "Use that gateway's admin token (GBT_GATEWAY_ADMIN_TOKEN, or <data dir>/admin-token).",
  apiKey: "Use an API key of that gateway (`gbt gateway keys create NAME`).",
  shape: "Is the URL a gbt gateway of the same version?",
};

/** What the refused call was, for the error's wording. */
export interface RefusedCall {
  path: string;
  auth: GatewayAuth;
  /** `The <refusedBy> refused: <server message>` instead of the server message alone. */
  refusedBy?: string | undefined;
  /** Next steps by error code, for refusals this call explains better than the generic ones. */
  hints?: Partial<Record<ErrorCode, string>> | undefined;
}

/** The GbtError of a non-2xx answer; `body` is its parsed JSON (undefined when it had none). */
export function gatewayRefusal(
  status: number,
  body: unknown,
  call: RefusedCall,
  hints: GatewayHints,
): GbtError {
  const parsed = gatewayErrorBodySchema.safeParse(body);
  const wire = parsed.success ? parsed.data.error.code : null;
  const serverMessage = parsed.success ? parsed.data.error.message.slice(0, 500) : undefined;
  const details = { status, code: wire, path: call.path };
  const refusedCredential = refusedCredentialOf(status, wire, call.auth);
  if (refusedCredential === "admin") {
    return new GbtError("UNAUTHORIZED", "The gateway refused the admin token.", {
      details,
      hint: hints.adminToken ?? defaultGatewayHints.adminToken,
    });
  }
  if (refusedCredential === "apiKey") {
    return new GbtError("UNAUTHORIZED", "The gateway refused the API key.", {
      details,
      hint: hints.apiKey ?? defaultGatewayHints.apiKey,
    });
  }
  const code = codeOfAnswer(status, wire);
  if (code === "GATEWAY_UNREACHABLE") {
    return new GbtError("GATEWAY_UNREACHABLE", `The gateway answered HTTP ${status}.`, {
      details: serverMessage === undefined ? details : { ...details, message: serverMessage },
      ...hintOf(call, code),
    });
  }
  const message =
    serverMessage === undefined
      ? `The gateway answered HTTP ${status}.`
      : call.refusedBy === undefined
        ? serverMessage
        : `The ${call.refusedBy} refused: ${serverMessage}`;
  return new GbtError(code, message, { details, ...hintOf(call, code) });
}

function hintOf(call: RefusedCall, code: ErrorCode): { hint?: string } {
  const hint = call.hints?.[code];
  return hint === undefined ? {} : { hint };
}

/** Whether the answer refuses the call's credential (a 401/403 without a more precise wire code). */
function refusedCredentialOf(
  status: number,
  wire: string | null,
  auth: GatewayAuth,
): GatewayAuth | undefined {
  if (wire === "invalid_admin_token") return "admin";
  if (wire === "invalid_api_key") return "apiKey";
  if ((status === 401 || status === 403) && wire === null && auth !== "none") return auth;
  return undefined;
}

/** The GbtError code of an answer: its wire code through the table, else its status. */
export function codeOfAnswer(status: number, wire: string | null): ErrorCode {
  const named = wire === null ? undefined : codeOfWire(wire);
  if (named !== undefined) return errorCodes[named] === "bug" ? "GATEWAY_UNREACHABLE" : named;
  if (status === 401 || status === 403) return "UNAUTHORIZED";
  if (status === 402) return "INSUFFICIENT_FUNDS";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "CONFLICT";
  if (status === 429) return "BUSY";
  if (status >= 400 && status < 500) return "INVALID_INPUT";
  return "GATEWAY_UNREACHABLE";
}

/** A wire code of the table, or a GbtError code the server sent as its own (lower-cased) wire code. */
function codeOfWire(wire: string): ErrorCode | undefined {
  if (Object.hasOwn(httpErrorCodes, wire)) return httpErrorCodes[wire as HttpErrorCode][2];
  const upper = wire.toUpperCase();
  return Object.hasOwn(errorCodes, upper) ? (upper as ErrorCode) : undefined;
}
