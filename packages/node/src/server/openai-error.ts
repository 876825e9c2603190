/** The node server's mapping from gbt errors to OpenAI-style HTTP errors (see @gbt/protocol's http-error). */
import { GbtError, type HttpError, type HttpStatusTable, toHttpError as mapError } from "@gbt/protocol";

export { errorBody, HttpError, type OpenAIErrorBody, readBody, sendError, sendJson } from "@gbt/protocol";

const nodeStatuses: HttpStatusTable = {
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
  return mapError(error, nodeStatuses, "node server");
}

export { GbtError };
