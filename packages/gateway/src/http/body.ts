/**
 * Request bodies on the Hono routes, bounded: at most `limit` bytes (413 `request_too_large`
 * beyond, refused from the declared length when it says so), and JSON that does not parse is a
 * 400 `invalid_json`.
 */
import { httpError, readBounded } from "@gbt/protocol";
import type { Context } from "hono";

export async function readBytes(c: Context, limit: number): Promise<Buffer> {
  // The stream is opened only past the declared-length check; on overflow the server drains (or
  // cuts) the rest once the 413 is out.
  const bytes = await readBounded(() => c.req.raw.body, limit, {
    declaredLength: c.req.header("content-length"),
    onOverflow: "release",
  });
  if (bytes === "too large") throw tooLarge(limit);
  return bytes;
}

export async function readJson(c: Context, limit: number): Promise<unknown> {
  const raw = await readBytes(c, limit);
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw httpError("invalid_json", "The request body is not valid JSON.");
  }
}

function tooLarge(limit: number) {
  return httpError("request_too_large", `Request body over ${limit} bytes.`);
}
