/**
 * An HTTP/2 stream made fit to be node:http's connection (the outbound link's CONNECT tunnels,
 * gateway/src/link and node/src/link): node:http calls a few net.Socket methods a stream lacks, and
 * Node 20's Http2Stream loses the bytes of a string written before it has flushed (node:http writes
 * its head as a latin1 string; measured: the request line arrived as 16 bytes of garbage), so
 * strings are turned into Buffers on the way in, as a net.Socket would.
 */
import type { Duplex } from "node:stream";

export function asHttpConnection<T extends Duplex>(stream: T): T {
  const socketLike = stream as unknown as Record<string, unknown>;
  socketLike.setNoDelay ??= () => stream;
  socketLike.setKeepAlive ??= () => stream;
  socketLike.ref ??= () => stream;
  socketLike.unref ??= () => stream;
  (stream as unknown as { _writableState: { decodeStrings: boolean } })._writableState.decodeStrings = true;
  return stream;
}
