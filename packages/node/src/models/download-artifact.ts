/**
 * Downloads one artifact into a directory, verified: the sha256 is computed while the bytes arrive
 * (one pass), a dropped connection is resumed with `Range: bytes=N-`, the bytes go to a temporary
 * file beside the destination that is renamed only once the size and hash match, and every
 * failure (wrong bytes, a full disk, an abort, a refused redirect) removes that file. Free space is
 * checked before a byte is written, as soon as the size is known. Redirects are followed only to
 * hosts that `allowHost` admits, and request headers (a token) go only to the first host.
 */
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, statfs } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { GbtError } from "@gbt/protocol";
import { createStreamingSha256 } from "./streaming-sha256.js";

/** Progress of one download. */
export interface DownloadProgress {
  bytes: number;
  /** The artifact's size once known (manifest, Content-Length or Content-Range). */
  totalBytes: number | null;
}

export interface DownloadArtifactParameters {
  url: string;
  /** Where the verified file ends up; the temporary file is written beside it. */
  destination: string;
  /** Expected sha256 (hex); without it the hash is only reported. */
  sha256?: string;
  /** Expected size in bytes; a server announcing another is refused before any byte is written. */
  size?: number;
  /** Whether a redirect may go to `host` (host:port); the first URL's host is always allowed. */
  allowHost?: (host: string) => boolean;
  /** Headers sent to the first URL's host only (an access token). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Attempts in a row that bring no new byte before giving up (default 5). */
  maxStalledAttempts?: number;
  /** Milliseconds without a byte after which a connection counts as dropped (default 30 s). */
  idleTimeoutMs?: number;
  /** Free bytes of the directory (default: statfs). */
  freeBytes?: (dir: string) => Promise<number>;
  /** Opens the temporary file for writing (default: fs.createWriteStream); tests inject a full disk. */
  openSink?: (path: string, flags: "w" | "a") => Writable;
}

export interface DownloadArtifactResult {
  path: string;
  sha256: string;
  bytes: number;
}

const MAX_REDIRECTS = 8;

/** statfs's free bytes for an unprivileged writer. */
export async function statfsFreeBytes(dir: string): Promise<number> {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** The GbtError of a failed write: a full disk has its own message. */
function writeError(error: unknown, dir: string): GbtError {
  if (error instanceof GbtError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new GbtError("IO_ERROR", `The disk holding ${dir} filled up during the download.`, {
      details: { dir },
      hint: "Free space there (or set a models dir on a larger disk) and pull again; nothing was installed.",
      cause: error,
    });
  }
  return new GbtError("IO_ERROR", `Could not write the download in ${dir}: ${(error as Error).message}`, {
    details: { dir, code },
    cause: error,
  });
}

/** One response, redirects resolved: the response and the URL that answered it. */
async function openResponse(
  url: URL,
  firstHost: string,
  parameters: DownloadArtifactParameters,
  range: number,
  onRequest: (destroy: (error: Error) => void) => void,
): Promise<{ response: IncomingMessage; url: URL }> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = current.protocol === "https:" ? httpsRequest : httpRequest;
      const headers: Record<string, string> = {
        "user-agent": "gbt-model-pull",
        "accept-encoding": "identity",
        ...(current.host === firstHost ? parameters.headers : {}),
        ...(range > 0 ? { range: `bytes=${range}-` } : {}),
      };
      const req = send(current, { method: "GET", headers }, resolve);
      req.on("error", reject);
      req.setTimeout(parameters.idleTimeoutMs ?? 30_000, () =>
        req.destroy(Object.assign(new Error("no byte within the idle timeout"), { code: "ESTALLED" })),
      );
      onRequest((error) => req.destroy(error));
      req.end();
    });
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location) {
      response.resume();
      const next = new URL(location, current);
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new GbtError("POLICY_DENIED", `A redirect to ${next.protocol} is not followed.`, {
          details: { from: current.href, to: next.href },
        });
      }
      if (current.protocol === "https:" && next.protocol === "http:") {
        throw new GbtError("POLICY_DENIED", `Refusing a redirect from https to plain http (${next.host}).`, {
          details: { from: current.href, to: next.href },
        });
      }
      if (next.host !== firstHost && !(parameters.allowHost?.(next.host) ?? false)) {
        throw new GbtError(
          "POLICY_DENIED",
          `The download redirects to ${next.host}, a host the policy does not allow.`,
          {
            details: { from: current.href, to: next.href, host: next.host },
            hint: "Allow the host in the node's pull policy (agent.pullPolicy.allowedHosts) or download from a URL on an allowed host.",
          },
        );
      }
      current = next;
      continue;
    }
    return { response, url: current };
  }
  throw new GbtError("SOURCE_UNREACHABLE", `More than ${MAX_REDIRECTS} redirects from ${url.href}.`, {
    details: { url: url.href },
  });
}

function httpStatusError(status: number, url: URL): GbtError {
  const details = { status, url: url.href };
  if (status === 404 || status === 410)
    return new GbtError("NOT_FOUND", `${url.href} answered ${status}: no such file.`, {
      details,
      hint: "Check the source's spelling (owner, repository, file name, version).",
    });
  if (status === 401 || status === 403)
    return new GbtError("UNAUTHORIZED", `${url.href} answered ${status}: access refused.`, {
      details,
      hint: "A gated or private file needs a token (HF_TOKEN for the Hugging Face hub).",
    });
  return new GbtError("SOURCE_UNREACHABLE", `${url.href} answered ${status}.`, {
    details,
    hint: "The server may be down or overloaded; pull again later.",
  });
}

/** Total size from a 206's Content-Range (`bytes a-b/total`) or a 416's (`bytes *\/total`). */
function rangeTotal(header: string | undefined): { start: number | null; total: number | null } {
  const match = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(header ?? "");
  if (!match) return { start: null, total: null };
  return {
    start: match[1] !== undefined ? Number(match[1]) : null,
    total: match[2] !== undefined && match[2] !== "*" ? Number(match[2]) : null,
  };
}

/** Destroys a write stream and waits until its file is closed (a later open would recreate the file). */
async function discard(sink: Writable | undefined): Promise<void> {
  if (!sink || sink.closed) return;
  await new Promise<void>((resolve) => {
    sink.once("close", () => resolve());
    sink.destroy();
  });
}

/** Downloads `url` to `destination`, verified; see the module header for the guarantees. */
export async function downloadArtifact(
  parameters: DownloadArtifactParameters,
): Promise<DownloadArtifactResult> {
  const { destination, signal } = parameters;
  const dir = dirname(destination);
  const temp = join(dir, `.${basename(destination)}.${randomUUID().slice(0, 8)}.partial`);
  const url = new URL(parameters.url);
  const freeBytes = parameters.freeBytes ?? statfsFreeBytes;
  const openSink =
    parameters.openSink ??
    // Large write buffers: fewer, bigger writes on libuv's pool while the next bytes arrive.
    ((path: string, flags: "w" | "a") => createWriteStream(path, { flags, highWaterMark: 4 * 1024 * 1024 }));
  const maxStalled = parameters.maxStalledAttempts ?? 5;
  const hash = createStreamingSha256(parameters.size ?? null);
  let received = 0;
  let total: number | null = parameters.size ?? null;
  let spaceChecked = false;
  let sink: Writable | undefined;
  /** The current attempt's reaction to a write error (the sink keeps one listener for its life). */
  let onSinkFailure: ((error: unknown) => void) | undefined;
  let sinkFailure: unknown;
  let destroyRequest: ((error: Error) => void) | undefined;

  const interrupted = () =>
    new GbtError("INTERRUPTED", "The pull was interrupted; nothing was installed.", {
      details: { url: url.href },
    });
  const onAbort = () => destroyRequest?.(interrupted());
  signal?.addEventListener("abort", onAbort, { once: true });

  async function checkSpace(needed: number): Promise<void> {
    if (spaceChecked) return;
    spaceChecked = true;
    const free = await freeBytes(dir);
    if (free < needed) {
      throw new GbtError(
        "IO_ERROR",
        `Not enough disk space: the model needs ${mib(needed)}, ${dir} has ${mib(free)} free.`,
        {
          details: { dir, neededBytes: needed, freeBytes: free },
          hint: "Free space on that disk, or point the models dir at a larger one, then pull again.",
        },
      );
    }
  }

  async function closeSink(): Promise<void> {
    const open = sink;
    sink = undefined;
    if (!open) return;
    if (sinkFailure !== undefined) throw writeError(sinkFailure, dir);
    await new Promise<void>((resolve, reject) => {
      onSinkFailure = reject;
      open.end(() => resolve());
    });
    onSinkFailure = undefined;
  }

  function mismatch(message: string, details: Record<string, unknown>): GbtError {
    return new GbtError("ARTIFACT_MISMATCH", message, {
      details: { url: url.href, ...details },
      hint: "The source does not serve the file its manifest or --sha256 describes; nothing was installed. Check the source, or tell its publisher.",
    });
  }

  /** One request: resolves true when the file is complete, false when the connection dropped. */
  async function attempt(): Promise<boolean> {
    const { response, url: answered } = await openResponse(url, url.host, parameters, received, (destroy) => {
      destroyRequest = destroy;
    });
    const status = response.statusCode ?? 0;
    if (status === 416) {
      response.resume();
      const { total: announced } = rangeTotal(response.headers["content-range"]);
      if (announced !== null && announced === received && received > 0) return true;
      throw httpStatusError(status, answered);
    }
    if (status !== 200 && status !== 206) {
      response.resume();
      throw httpStatusError(status, answered);
    }
    const length = Number(response.headers["content-length"] ?? Number.NaN);
    let announced: number | null;
    if (status === 206) {
      const range = rangeTotal(response.headers["content-range"]);
      if (range.start !== received) {
        response.resume();
        throw new GbtError("SOURCE_UNREACHABLE", `${answered.host} resumed at the wrong offset.`, {
          details: { expected: received, got: range.start },
        });
      }
      announced = range.total;
    } else {
      if (received > 0) {
        // The server ignored Range: start over with a fresh hash and file.
        await closeSink();
        hash.reset();
        received = 0;
      }
      announced = Number.isFinite(length) ? length : null;
    }
    if (announced !== null) {
      if (parameters.size !== undefined && announced !== parameters.size) {
        response.resume();
        throw mismatch(
          `${answered.host} announces ${announced} bytes; the artifact has ${parameters.size}.`,
          {
            expectedBytes: parameters.size,
            announcedBytes: announced,
          },
        );
      }
      total = announced;
    }
    if (total !== null) await checkSpace(total - received);
    if (!sink) {
      sink = openSink(temp, received > 0 ? "a" : "w");
      sink.on("error", (error: unknown) => {
        sinkFailure ??= error;
        onSinkFailure?.(error);
      });
    }
    if (sinkFailure !== undefined) throw writeError(sinkFailure, dir);
    const out = sink;
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const finish = (value: boolean | Error) => {
        if (settled) return;
        settled = true;
        onSinkFailure = undefined;
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      const onSinkError = (error: unknown) => {
        response.destroy();
        finish(writeError(error, dir));
      };
      onSinkFailure = onSinkError;
      response.on("data", (chunk: Buffer) => {
        if (settled) return;
        const limit = parameters.size ?? total;
        if (limit !== null && received + chunk.length > limit) {
          response.destroy();
          finish(
            mismatch(`${answered.host} sent more than the ${limit} bytes of the artifact.`, {
              expectedBytes: limit,
            }),
          );
          return;
        }
        hash.update(chunk);
        received += chunk.length;
        if (!out.write(chunk)) {
          response.pause();
          out.once("drain", () => response.resume());
        }
        parameters.onProgress?.({ bytes: received, totalBytes: total });
      });
      response.on("end", () => {
        if (total === null || received === total) finish(true);
        else finish(false);
      });
      response.on("error", (error: NodeJS.ErrnoException) => {
        if (error instanceof GbtError) finish(error);
        else finish(false);
      });
      response.on("aborted", () => finish(total !== null && received === total));
      response.on("close", () => finish(received === total));
    });
  }

  try {
    await Promise.resolve();
    if (parameters.size !== undefined) await checkSpace(parameters.size);
    let stalled = 0;
    for (;;) {
      if (signal?.aborted) throw interrupted();
      const before = received;
      let done: boolean;
      try {
        done = await attempt();
      } catch (error) {
        if (signal?.aborted) throw interrupted();
        if (error instanceof GbtError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        if (received === 0 && code !== "ESTALLED" && code !== "ECONNRESET") {
          throw new GbtError("SOURCE_UNREACHABLE", `Cannot reach ${url.host}: ${(error as Error).message}.`, {
            details: { url: url.href, code },
            hint: "Check the URL and this machine's network (proxy, firewall, DNS), then pull again.",
            cause: error,
          });
        }
        done = false;
      }
      if (signal?.aborted) throw interrupted();
      if (done) break;
      stalled = received > before ? 0 : stalled + 1;
      if (stalled >= maxStalled) {
        throw new GbtError(
          "SOURCE_UNREACHABLE",
          `${url.host} keeps closing the connection: ${received} of ${total ?? "?"} bytes after ${maxStalled} tries without progress.`,
          {
            details: { url: url.href, bytes: received, totalBytes: total },
            hint: "The server or the network is failing; pull again later (nothing was installed).",
          },
        );
      }
    }
    await closeSink().catch((error: unknown) => {
      throw writeError(error, dir);
    });
    const digest = await hash.digest();
    if (parameters.size !== undefined && received !== parameters.size) {
      throw mismatch(`Got ${received} bytes; the artifact has ${parameters.size}.`, {
        expectedBytes: parameters.size,
        bytes: received,
      });
    }
    if (parameters.sha256 !== undefined && digest !== parameters.sha256.toLowerCase()) {
      throw mismatch(
        `The downloaded bytes hash to ${digest}, not the expected ${parameters.sha256.toLowerCase()}.`,
        {
          expectedSha256: parameters.sha256.toLowerCase(),
          sha256: digest,
          bytes: received,
        },
      );
    }
    await rename(temp, destination);
    return { path: destination, sha256: digest, bytes: received };
  } catch (error) {
    await discard(sink);
    sink = undefined;
    await rm(temp, { force: true });
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await hash.close();
  }
}
