/**
 * Streaming sha256 of artifact files. Memory stays flat on multi-GB files: two fixed buffers are
 * reused for the whole file, one filled by the next read while the other is hashed, so the disk
 * (or page cache) and the hash run side by side and nothing grows with the file's size.
 */
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { GbtError } from "./errors.js";

/** Read size per step; 1 MiB keeps syscalls rare while staying cache-friendly. */
export const DEFAULT_HASH_CHUNK_BYTES = 1024 * 1024;

export interface HashProgress {
  bytes: number;
  totalBytes: number;
}

export interface Sha256FileOptions {
  chunkBytes?: number;
  /** Called after each chunk (at most every `progressEveryBytes`, and at the end). */
  onProgress?: (progress: HashProgress) => void;
  progressEveryBytes?: number;
  signal?: AbortSignal;
}

export interface FileDigest {
  /** Lower-case hex, no prefix. */
  sha256: string;
  size: number;
}

/** Hashes a file by streaming it through two reused buffers; IO_ERROR / NOT_FOUND naming the file otherwise. */
export async function sha256File(path: string, options: Sha256FileOptions = {}): Promise<FileDigest> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_HASH_CHUNK_BYTES;
  const every = options.progressEveryBytes ?? 64 * 1024 * 1024;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (cause) {
    throw fileError(path, cause);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new GbtError("INVALID_INPUT", `${path} is not a regular file.`, { details: { path } });
    }
    const totalBytes = info.size;
    const hash = createHash("sha256");
    const buffers: Buffer[] = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
    let position = 0;
    let reported = 0;
    let which = 0;
    let pending = handle.read(buffers[0] as Buffer, 0, chunkBytes, 0);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const current = buffers[which] as Buffer;
      position += bytesRead;
      which = 1 - which;
      // Start the next read before hashing this chunk: the read runs on the thread pool meanwhile.
      pending = handle.read(buffers[which] as Buffer, 0, chunkBytes, position);
      hash.update(bytesRead === chunkBytes ? current : current.subarray(0, bytesRead));
      if (options.signal?.aborted) {
        await pending.catch(() => undefined);
        throw new GbtError("INTERRUPTED", `Hashing ${path} was interrupted.`);
      }
      if (options.onProgress && position - reported >= every) {
        reported = position;
        options.onProgress({ bytes: position, totalBytes: Math.max(totalBytes, position) });
      }
    }
    options.onProgress?.({ bytes: position, totalBytes: position });
    return { sha256: hash.digest("hex"), size: position };
  } catch (cause) {
    if (cause instanceof GbtError) throw cause;
    throw fileError(path, cause);
  } finally {
    await handle.close();
  }
}

function fileError(path: string, cause: unknown): GbtError {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return new GbtError("NOT_FOUND", `The artifact ${path} does not exist.`, {
      details: { path },
      hint: "Paths in a manifest are relative to the manifest's directory; build the artifact first.",
      cause,
    });
  }
  return new GbtError("IO_ERROR", `Cannot read the artifact ${path} (${code ?? "error"}).`, {
    details: { path },
    cause,
  });
}
