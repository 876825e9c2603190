/**
 * Request bodies on the Hono routes, bounded: at most `limit` bytes (413 `request_too_large`
 * beyond, refused from the declared length when it says so), and JSON that does not parse is a
 * 400 `invalid_json`.
 */
import { httpError } from "@gbt/protocol";
import type { Context } from "hono";

export async function readBytes(c: Context, limit: number): Promise<Buffer> {
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const body = c.req.raw.body;
  if (body === null) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      // The rest is drained (or the connection cut) by the server once the 413 is out.
      reader.releaseLock();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? Buffer.from(chunks[0] as Uint8Array) : Buffer.concat(chunks);
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
