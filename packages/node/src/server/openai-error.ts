/**
 * OpenAI-style error bodies, `{"error": {message, type, param, code}}`, and the one mapping
 * from gbt errors to HTTP statuses used by every route.
 */
import type { ServerResponse } from "node:http";
import { type ErrorCode, GbtError, isGbtError } from "@gbt/protocol";

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string | null,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const statusOf: Partial<Record<ErrorCode, [number, string, string]>> = {
  MODEL_NOT_FOUND: [404, "invalid_request_error", "model_not_found"],
  NOT_FOUND: [404, "invalid_request_error", "not_found"],
  CONTEXT_LENGTH_EXCEEDED: [400, "invalid_request_error", "context_length_exceeded"],
  INVALID_INPUT: [400, "invalid_request_error", "invalid_value"],
  BUSY: [429, "rate_limit_error", "over_capacity"],
  UNAUTHORIZED: [401, "authentication_error", "invalid_api_key"],
  BACKEND_UNREACHABLE: [502, "server_error", "backend_unreachable"],
};

/** Converts anything thrown inside a handler into an HttpError (unknown errors become 500s). */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (isGbtError(error)) {
    const mapped = statusOf[error.code];
    if (mapped) {
      const headers: Record<string, string> = error.code === "BUSY" ? { "retry-after": "1" } : {};
      return new HttpError(mapped[0], mapped[1], mapped[2], error.message, null, headers);
    }
    return new HttpError(500, "server_error", error.code.toLowerCase(), error.message);
  }
  return new HttpError(500, "server_error", "internal_error", "Internal error in the node server.");
}

export function errorBody(error: HttpError): OpenAIErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

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

export { GbtError };
