/**
 * A loopback HTTP server that serves model artifacts the way a CDN or the Hugging Face hub does
 * (GET and HEAD, `Range: bytes=N-` answered 206 with Content-Range), with fault switches that a
 * test flips between requests: drop the connection mid-body, send wrong bytes, lie about
 * Content-Length, redirect to another host, stall. It also answers the gateway registry's
 * `GET /v1/registry/models/:name/:version` from fixtures, so a registry pull runs end to end over
 * real sockets. Every request is counted, so a test can tell one download from two.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { registryModelPath } from "@gbt/protocol";

/** What the next requests of a file get; every switch stays until changed. */
export interface ArtifactFaults {
  /** Close the connection after this many body bytes of each response (a 200 or a 206). */
  dropAfterBytes?: number;
  /** Drop only the first N responses (then serve whole); default: every response while set. */
  dropTimes?: number;
  /** Flip one byte in the middle of the body (the file's size stays right). */
  wrongBytes?: boolean;
  /** Announce this Content-Length instead of the true one (the body is the true one, then close). */
  claimLength?: number;
  /** Answer every request for the file with a 302 to this URL. */
  redirectTo?: string;
  /** Send the headers and this many bytes, then nothing (the connection stays open). */
  stallAfterBytes?: number;
  /** Ignore Range (always answer 200 with the whole file). */
  ignoreRange?: boolean;
}

export interface ArtifactServerOptions {
  /** Files served by path (`/models/tiny.gguf` → bytes). */
  files: Record<string, Uint8Array>;
  /** Signed manifests answered by `GET /v1/registry/models/:name/:version`, keyed by `name@version`. */
  registry?: Record<string, unknown>;
  /** Extra headers of a file's responses (e.g. `x-linked-etag` as the hub sends it). */
  headers?: Record<string, Record<string, string>>;
  /** Bytes per write (default 64 KiB). */
  chunkBytes?: number;
}

/** One request as the server saw it. */
export interface ArtifactRequest {
  method: string;
  path: string;
  range: string | undefined;
  host: string | undefined;
  status: number;
}

export interface ArtifactServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Every request, oldest first. */
  requests: ArtifactRequest[];
  /** The requests of one path (GET only unless `method` says otherwise). */
  requestsOf(path: string, method?: string): ArtifactRequest[];
  /** Sets the faults of one file (replacing its previous ones). */
  setFaults(path: string, faults: ArtifactFaults): void;
  /** Adds or replaces a file. */
  setFile(path: string, bytes: Uint8Array): void;
  /** Adds or replaces a registry answer (`name@version` → signed manifest). */
  setRegistryModel(ref: string, signed: unknown): void;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 at an ephemeral port. */
export async function startArtifactServer(options: ArtifactServerOptions): Promise<ArtifactServer> {
  const files = new Map(Object.entries(options.files));
  const faults = new Map<string, ArtifactFaults>();
  const drops = new Map<string, number>();
  const requests: ArtifactRequest[] = [];
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const stalled = new Set<ServerResponse>();

  const registryAnswers = new Map<string, unknown>();
  const setRegistryModel = (ref: string, signed: unknown) => {
    const at = ref.lastIndexOf("@");
    registryAnswers.set(registryModelPath(ref.slice(0, at), ref.slice(at + 1)), signed);
  };
  for (const [ref, signed] of Object.entries(options.registry ?? {})) setRegistryModel(ref, signed);

  function answerRegistry(path: string, res: ServerResponse): boolean {
    const signed = registryAnswers.get(path);
    if (signed === undefined) return false;
    const payload = (signed as { payload: Record<string, unknown> }).payload;
    const artifacts = payload.artifacts as Array<{ size: number }>;
    const now = new Date().toISOString();
    const body = JSON.stringify({
      name: payload.name,
      version: payload.version,
      publisher: payload.publisher,
      manifestHash: (signed as { message: { manifestHash: string } }).message.manifestHash,
      status: "approved",
      createdAt: payload.createdAt,
      submittedAt: now,
      statusChangedAt: now,
      statusReason: null,
      artifacts: artifacts.length,
      sizeBytes: artifacts.reduce((sum, artifact) => sum + artifact.size, 0),
      signed,
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return true;
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, path: string): number {
    const file = files.get(path);
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return 404;
    }
    const fault = faults.get(path) ?? {};
    if (fault.redirectTo !== undefined) {
      res.writeHead(302, { location: fault.redirectTo }).end();
      return 302;
    }
    let body = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
    if (fault.wrongBytes) {
      body = Buffer.from(body);
      const middle = Math.floor(body.length / 2);
      body[middle] = (body[middle] ?? 0) ^ 0xff;
    }
    const total = body.length;
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && !fault.ignoreRange) {
      start = Number(range[1]);
      if (start >= total) {
        res.writeHead(416, { "content-range": `bytes */${total}` }).end();
        return 416;
      }
      status = 206;
    }
    const slice = body.subarray(start);
    const headers: Record<string, string | number> = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      "content-length": fault.claimLength ?? slice.length,
      ...(options.headers?.[path] ?? {}),
    };
    if (status === 206) headers["content-range"] = `bytes ${start}-${total - 1}/${total}`;
    res.writeHead(status, headers);
    if (req.method === "HEAD") {
      res.end();
      return status;
    }
    const dropped = drops.get(path) ?? 0;
    const dropNow =
      fault.dropAfterBytes !== undefined && (fault.dropTimes === undefined || dropped < fault.dropTimes);
    if (dropNow) drops.set(path, dropped + 1);
    const cut = dropNow
      ? Math.min(slice.length, fault.dropAfterBytes as number)
      : fault.stallAfterBytes !== undefined
        ? Math.min(slice.length, fault.stallAfterBytes)
        : slice.length;
    let offset = 0;
    const pump = () => {
      while (offset < cut) {
        const end = Math.min(cut, offset + chunkBytes);
        const more = res.write(slice.subarray(offset, end));
        offset = end;
        if (!more) {
          res.once("drain", pump);
          return;
        }
      }
      if (dropNow) {
        // end, not destroy: the bytes written so far reach the client, then the connection closes.
        res.socket?.end();
      } else if (fault.stallAfterBytes !== undefined) {
        stalled.add(res);
      } else if (fault.claimLength !== undefined && fault.claimLength > slice.length) {
        // The announced length was a lie: end the connection once the real bytes are out.
        res.socket?.end();
      } else {
        res.end();
      }
    };
    pump();
    return status;
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    if ((req.method === "GET" || req.method === "HEAD") && answerRegistry(path, res)) {
      requests.push({ method: req.method, path, range: undefined, host: req.headers.host, status: 200 });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
      return;
    }
    const entry: ArtifactRequest = {
      method: req.method,
      path,
      range: req.headers.range,
      host: req.headers.host,
      status: 0,
    };
    requests.push(entry);
    entry.status = serveFile(req, res, path);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    requestsOf: (path, method = "GET") => requests.filter((r) => r.path === path && r.method === method),
    setFaults(path, next) {
      faults.set(path, next);
      drops.delete(path);
    },
    setFile(path, bytes) {
      files.set(path, bytes);
    },
    setRegistryModel,
    async close() {
      for (const res of stalled) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
