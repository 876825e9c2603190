/**
 * Reading a body with a byte bound, the one way servers and clients of gbt do it on web streams
 * (Hono request bodies, fetch responses): refused from the declared length when it says so,
 * otherwise counted as it streams, so that an oversized or endless body never sits in memory.
 */

export interface BoundedReadOptions {
  /** The Content-Length header, when there is one. */
  declaredLength?: string | null | undefined;
  /**
   * On overflow: cancel the stream (a client dropping a response), or only let go of it (a server
   * that answers 413 first and drains or cuts the rest itself). Default "cancel".
   */
  onOverflow?: "cancel" | "release";
}

/**
 * The whole body, or "too large" past `maxBytes`. `body` may be given as a function: it is opened
 * only once the declared length passed (a server's request stream, which opening starts reading).
 */
export async function readBounded(
  source: ReadableStream<Uint8Array> | null | (() => ReadableStream<Uint8Array> | null),
  maxBytes: number,
  options: BoundedReadOptions = {},
): Promise<Buffer | "too large"> {
  const declared = Number(options.declaredLength ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    if (typeof source !== "function" && (options.onOverflow ?? "cancel") === "cancel") {
      await source?.cancel().catch(() => undefined);
    }
    return "too large";
  }
  const body = typeof source === "function" ? source() : source;
  if (body === null) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      if ((options.onOverflow ?? "cancel") === "cancel") await reader.cancel().catch(() => undefined);
      else reader.releaseLock();
      return "too large";
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? Buffer.from(chunks[0] as Uint8Array) : Buffer.concat(chunks);
}
