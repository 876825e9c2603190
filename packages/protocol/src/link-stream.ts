/**
 * An HTTP/2 stream made fit to be node:http's connection (the outbound link's CONNECT tunnels,
 * gateway/src/link and node/src/link): node:http calls a few net.Socket methods a stream lacks, and
 * Node 20's Http2Stream loses the bytes of a string written before it has flushed (node:http writes
 * its head as a latin1 string; measured: the request line arrived as 16 bytes of garbage), so
 * strings are turned into Buffers on the way in, as a net.Socket would.
 */
import type { Duplex, Readable } from "node:stream";
import type { z } from "zod";
import { LINK_MAX_CONTROL_LINE_BYTES } from "./gateway-link.js";

export function asHttpConnection<T extends Duplex>(stream: T): T {
  const socketLike = stream as unknown as Record<string, unknown>;
  socketLike.setNoDelay ??= () => stream;
  socketLike.setKeepAlive ??= () => stream;
  socketLike.ref ??= () => stream;
  socketLike.unref ??= () => stream;
  (stream as unknown as { _writableState: { decodeStrings: boolean } })._writableState.decodeStrings = true;
  return stream;
}

/**
 * The messages of one side of the outbound link's control stream: one JSON object per line, each
 * checked by `schema`, in order. A line that is not JSON, does not match, or runs past
 * `LINK_MAX_CONTROL_LINE_BYTES` calls `onBad` once and nothing more is read: the link is closed.
 */
export function readControlMessages<T>(
  stream: Readable,
  schema: z.ZodType<T>,
  onMessage: (message: T) => void,
  onBad: (reason: string) => void,
): void {
  let buffered = "";
  let bad = false;
  const fail = (reason: string) => {
    if (bad) return;
    bad = true;
    onBad(reason);
  };
  stream.setEncoding("utf8");
  stream.on("data", (text: string) => {
    if (bad) return;
    buffered += text;
    let newline = buffered.indexOf("\n");
    while (newline >= 0 && !bad) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
      if (line.trim() === "") continue;
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch {
        fail("a control line is not JSON");
        return;
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) fail("a control message is malformed");
      else onMessage(parsed.data);
    }
    if (buffered.length > LINK_MAX_CONTROL_LINE_BYTES) fail("a control line passed the size limit");
  });
}
