/**
 * A sha256 fed while a download arrives. For large files the hashing runs in a worker thread, so
 * it overlaps with receiving and writing instead of adding to them (on loopback, hashing on the
 * receiving thread roughly halves the throughput); bytes are batched into 1 MiB blocks whose
 * memory is handed to the worker, not copied twice. Small files hash inline: a worker's start-up
 * would cost more than it saves. Either way each byte is hashed exactly once, in order.
 */
import { createHash, type Hash } from "node:crypto";
import { Worker } from "node:worker_threads";

export interface StreamingSha256 {
  update(chunk: Buffer): void;
  /** Forgets everything hashed so far (a server that ignored Range: the download starts over). */
  reset(): void;
  /** The hex digest of every byte since the last reset. */
  digest(): Promise<string>;
  /** Releases the worker (idempotent). */
  close(): Promise<void>;
}

/** Files at least this large hash in a worker. */
export const WORKER_HASH_MIN_BYTES = 32 * 1024 * 1024;
const BATCH_BYTES = 1024 * 1024;

function inlineSha256(): StreamingSha256 {
  let hash: Hash = createHash("sha256");
  return {
    update: (chunk) => void hash.update(chunk),
    reset: () => {
      hash = createHash("sha256");
    },
    digest: async () => hash.digest("hex"),
    close: async () => undefined,
  };
}

// The worker's whole program: messages are blocks to hash, "reset", or "digest" (answered with the hex).
const WORKER_SOURCE = `
import { parentPort } from "node:worker_threads";
import { createHash } from "node:crypto";
let hash = createHash("sha256");
parentPort.on("message", (message) => {
  if (message === "reset") hash = createHash("sha256");
  else if (message === "digest") { parentPort.postMessage(hash.digest("hex")); hash = createHash("sha256"); }
  else hash.update(new Uint8Array(message));
});
`;

function workerSha256(): StreamingSha256 {
  // A data: URL module, so the worker is the same under any loader (dist, vitest, --input-type).
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`));
  worker.unref();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let closed = false;
  const flush = () => {
    if (pendingBytes === 0) return;
    // One fresh block we own, so its memory can be transferred instead of copied.
    const block = new ArrayBuffer(pendingBytes);
    const view = new Uint8Array(block);
    let offset = 0;
    for (const chunk of pending) {
      view.set(chunk, offset);
      offset += chunk.length;
    }
    pending = [];
    pendingBytes = 0;
    worker.postMessage(block, [block]);
  };
  return {
    update(chunk) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= BATCH_BYTES) flush();
    },
    reset() {
      pending = [];
      pendingBytes = 0;
      worker.postMessage("reset");
    },
    digest() {
      flush();
      return new Promise<string>((resolve, reject) => {
        worker.once("message", (hex: string) => resolve(hex));
        worker.once("error", reject);
        worker.postMessage("digest");
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await worker.terminate();
    },
  };
}

/** A streaming sha256 for a download of `expectedBytes` (null: unknown, treated as large). */
export function createStreamingSha256(expectedBytes: number | null): StreamingSha256 {
  return expectedBytes !== null && expectedBytes < WORKER_HASH_MIN_BYTES ? inlineSha256() : workerSha256();
}
