/**
 * OpenAI-style HTTP errors, `{"error": {message, type, param, code}}`, and the two body helpers
 * (bounded read, JSON answer), shared by the node server and the gateway so that every gbt
 * endpoint reads and fails the same way. Each server maps GbtError codes
 * to statuses with its own table; anything unknown becomes a 500 that leaks no internals.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type ErrorCode, isGbtError } from "./errors.js";

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

/** GbtError code → [HTTP status, OpenAI error type, OpenAI error code]. */
export type HttpStatusTable = Partial<Record<ErrorCode, readonly [number, string, string]>>;

/** Converts anything thrown inside a handler into an HttpError (unknown errors become 500s). */
export function toHttpError(error: unknown, table: HttpStatusTable, component = "server"): HttpError {
  if (error instanceof HttpError) return error;
  if (isGbtError(error)) {
    const mapped = table[error.code];
    if (mapped) {
      const headers: Record<string, string> = error.code === "BUSY" ? { "retry-after": "1" } : {};
      return new HttpError(mapped[0], mapped[1], mapped[2], error.message, null, headers);
    }
    return new HttpError(500, "server_error", error.code.toLowerCase(), error.message);
  }
  return new HttpError(500, "server_error", "internal_error", `Internal error in the ${component}.`);
}

export function errorBody(error: HttpError): OpenAIErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
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
  return new HttpError(
    413,
    "invalid_request_error",
    "request_too_large",
    `Request body over ${limit} bytes.`,
  );
}
