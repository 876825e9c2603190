/**
 * A seeded HTTP fuzzer, for tests and benches only: mutated requests (random methods over real
 * routes, broken percent-escapes, huge, duplicate and invalid headers, content-length against the
 * body, chunked garbage, truncated bodies, JSON mutations of a valid body, with and without the
 * credentials) sent over raw TCP or through fetch, and the checks every answer must pass: no 5xx,
 * and a JSON error body of `{error: {message, type, code}}` on every 4xx. The same seed replays the
 * same requests, so a failing run can be rerun.
 */
import { connect } from "node:net";
import { seededRandom } from "@gbt/protocol";

export interface HttpFuzzTarget {
  /** Real routes (path parameters filled in): the fuzzer picks these, then mutates them. */
  routes: { method: string; path: string }[];
  /** Bearer tokens that mean something here (API keys, the admin token). */
  tokens: string[];
  /** A valid JSON body for `jsonPath` (a chat request): the base of the JSON mutations. */
  jsonBody: Record<string, unknown>;
  /** Where the JSON body goes. */
  jsonPath: string;
}

export type FuzzRequest =
  | { via: "raw"; label: string; bytes: Buffer }
  | {
      via: "fetch";
      label: string;
      method: string;
      path: string;
      headers: [string, string][];
      body?: string;
    };

export interface FuzzOutcome {
  /** Every response status read (a raw socket may carry several, or none). */
  statuses: number[];
  /** Checks that failed, one line each. */
  problems: string[];
  /** fetch refused to send it, the socket erred, or no answer came (all fine). */
  noResponse?: string;
}

export interface FuzzReport {
  requests: number;
  /** Responses by class: "2xx", "3xx", "4xx", "5xx". */
  byClass: Record<string, number>;
  /** Requests that got no response (closed, refused by the client, timed out). */
  noResponse: number;
  timedOut: number;
  /** The first failures, with the request that caused them. */
  problems: string[];
  problemCount: number;
  fiveXX: number;
}

const METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "CONNECT",
  "PROPFIND",
  "get",
  "G€T",
];

const UNICODE = ["é", "你好", "🦄", "\u0000", "\u202e", "\ud800", "\uffff", "\u200b", "\\u0000", "%00"];

type Random = () => number;

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

function int(random: Random, max: number): number {
  return Math.floor(random() * max);
}

/** A percent-escaped segment; a lone surrogate becomes its (invalid UTF-8) CESU-8 bytes. */
function escapeSegment(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return "%ED%A0%80";
  }
}

/** A path mutation: escapes broken, segments doubled, traversal, query junk, unicode. */
function mutatePath(random: Random, path: string): string {
  switch (int(random, 14)) {
    case 0:
      return `${path}%`;
    case 1:
      return `${path}/%zz`;
    case 2:
      return path.replace(/\/[^/]*$/, "/%E0%A4%A");
    case 3:
      return `${path}/..%2f..%2f`;
    case 4:
      return `${path}?${"a=1&".repeat(1 + int(random, 200))}`;
    case 5:
      return `${path}?q=%ff%fe&limit=${pick(random, ["-1", "1e309", "abc", "999999999999", "%", ""])}`;
    case 6:
      return path.replace(/[^/]+$/, (s) => s + "x".repeat(int(random, 5000)));
    case 7:
      return path.toUpperCase();
    case 8:
      return `${path}//`;
    case 9:
      return path.replace(/\/[^/]+(?=\/|$)/, `/${escapeSegment(pick(random, UNICODE))}`);
    case 10:
      return `${path}/${"%2e%2e/".repeat(1 + int(random, 5))}`;
    case 11:
      return `${path}#frag`;
    case 12:
      return `${path};jsessionid=1`;
    default:
      return path;
  }
}

/** A JSON value mutation of the valid body: wrong types, huge numbers, nesting, unicode. */
function junkValue(random: Random, depth = 0): unknown {
  switch (int(random, 14)) {
    case 0:
      return null;
    case 1:
      return pick(random, [1e308, -1e308, 2 ** 53 + 1, -0, 0.5, -1, 1e21, 4_294_967_297]);
    case 2:
      return pick(random, [true, false]);
    case 3:
      return pick(random, UNICODE).repeat(1 + int(random, 50));
    case 4:
      return "x".repeat(int(random, 100_000));
    case 5:
      return [];
    case 6:
      return {};
    case 7: {
      let nested: unknown = "deep";
      for (let i = 0, n = 1 + int(random, 200); i < n; i++)
        nested = random() < 0.5 ? [nested] : { a: nested };
      return nested;
    }
    case 8:
      return depth < 3 ? [junkValue(random, depth + 1), junkValue(random, depth + 1)] : 1;
    case 9:
      return depth < 3 ? { role: junkValue(random, depth + 1), content: junkValue(random, depth + 1) } : {};
    case 10:
      return { __proto__: { polluted: true }, constructor: { prototype: {} } };
    case 11:
      return "fake-model";
    case 12:
      return [{ role: "user", content: [{ type: "text", text: pick(random, UNICODE) }] }];
    default:
      return int(random, 1_000_000);
  }
}

const KEYS = [
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "stream",
  "stream_options",
  "temperature",
  "top_p",
  "n",
  "stop",
  "tools",
  "tool_choice",
  "response_format",
  "seed",
  "logprobs",
  "user",
  "__proto__",
  "constructor",
  "",
];

function mutateJson(random: Random, base: Record<string, unknown>): string {
  const body: Record<string, unknown> = structuredClone(base);
  // Some valid requests, streamed or not, so that the hot path (holds, in-flight counts) is fuzzed too.
  if (random() < 0.15) return JSON.stringify({ ...body, stream: random() < 0.5 });
  for (let i = 0, n = 1 + int(random, 3); i < n; i++) {
    const key = pick(random, KEYS);
    if (random() < 0.2) delete body[key];
    else body[key] = junkValue(random);
  }
  // Keep most whole answers small: the node is healthy and fast, but a stream of 10⁶ tokens is not a fuzz case.
  if (typeof body.max_tokens === "number" && body.max_tokens > 64 && random() < 0.5) body.max_tokens = 8;
  let text = JSON.stringify(body);
  switch (int(random, 8)) {
    case 0:
      return text.slice(0, int(random, text.length)); // truncated JSON
    case 1:
      return `${text}${text}`; // two documents
    case 2:
      return text.replace(/"/, "'");
    case 3:
      text = text.replace(/}$/, `,"model":"other-model"}`); // duplicate key
      return text;
    default:
      return text;
  }
}

function headerValue(random: Random): string {
  switch (int(random, 6)) {
    case 0:
      return "x".repeat(int(random, 20_000));
    case 1:
      return pick(random, UNICODE);
    case 2:
      return "a\tb";
    case 3:
      return "";
    case 4:
      return " spaced ";
    default:
      return String(int(random, 1e9));
  }
}

function authHeader(random: Random, tokens: string[]): [string, string] | undefined {
  switch (int(random, 7)) {
    case 0:
      return undefined;
    case 1:
      return ["authorization", `Bearer ${pick(random, tokens)}x`];
    case 2:
      return [
        "authorization",
        pick(random, ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "bearer  ", "Bearer \u00ff"]),
      ];
    case 3:
      return ["authorization", `Bearer ${"k".repeat(int(random, 10_000))}`];
    default:
      return ["authorization", `Bearer ${pick(random, tokens)}`];
  }
}

/** A generator of mutated requests, the same sequence for the same seed. */
export function httpFuzzer(seed: number, target: HttpFuzzTarget): () => FuzzRequest {
  const random = seededRandom(seed);
  let n = 0;
  return () => {
    n++;
    const route = pick(random, target.routes);
    const asJson = random() < 0.4;
    const method = asJson ? "POST" : random() < 0.6 ? route.method : pick(random, METHODS);
    const rawPath = asJson ? target.jsonPath : route.path;
    const path = random() < 0.5 ? mutatePath(random, rawPath) : rawPath;
    const body = asJson
      ? mutateJson(random, target.jsonBody)
      : method === "GET" || method === "HEAD" || random() < 0.5
        ? undefined
        : random() < 0.5
          ? JSON.stringify(junkValue(random))
          : Buffer.from(Array.from({ length: int(random, 2000) }, () => int(random, 256))).toString("latin1");
    const headers: [string, string][] = [];
    const auth = authHeader(random, target.tokens);
    if (auth) headers.push(auth);
    if (body !== undefined || random() < 0.2) {
      headers.push([
        "content-type",
        pick(random, [
          "application/json",
          "application/json; charset=utf-16",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data",
          ";;;",
          "application/json",
        ]),
      ]);
    }
    for (let i = 0, k = int(random, 4); i < k; i++) {
      headers.push(
        pick(random, [
          ["x-request-id", headerValue(random)],
          ["accept", pick(random, ["*/*", "text/event-stream", "application/json", "\u00ff"])],
          ["accept-encoding", pick(random, ["gzip", "br", "identity;q=0", "*;q=0"])],
          ["x-junk", headerValue(random)],
          ["authorization", `Bearer ${pick(random, target.tokens)}`],
          ["content-type", "application/json"],
          ["expect", "100-continue"],
          ["x-forwarded-for", pick(random, ["1.2.3.4", "::1", "garbage", "1.2.3.4, 5.6.7.8"])],
        ] as [string, string][]),
      );
    }
    const label = `#${n} ${method} ${path.slice(0, 120)}`;
    if (random() < 0.4)
      return { via: "fetch", label, method, path, headers, ...(body === undefined ? {} : { body }) };
    return { via: "raw", label, bytes: rawRequest(random, method, path, headers, body) };
  };
}

/** The bytes of a request, with the framing mutated: content-length against the body, chunked garbage, bad lines. */
function rawRequest(
  random: Random,
  method: string,
  path: string,
  headers: [string, string][],
  body: string | undefined,
): Buffer {
  const payload = Buffer.from(body ?? "", random() < 0.9 ? "utf8" : "latin1");
  const lines = [
    `${method} ${path} ${pick(random, ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", "HTTX/1.1"])}`,
  ];
  lines.push("host: fuzz");
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  let framed: Buffer = payload;
  switch (int(random, 12)) {
    case 0:
      lines.push(`content-length: ${payload.length + 1 + int(random, 100)}`); // truncated body
      break;
    case 1:
      lines.push(`content-length: ${Math.max(0, payload.length - 1 - int(random, 10))}`); // extra bytes: a second "request"
      break;
    case 2:
      lines.push(`content-length: ${payload.length}`, `content-length: ${payload.length + 5}`);
      break;
    case 3:
      lines.push(
        `content-length: ${pick(random, ["-1", "abc", "1e3", "99999999999999999999", " 5", "0x10"])}`,
      );
      break;
    case 4:
      lines.push("transfer-encoding: chunked");
      framed = Buffer.concat([
        Buffer.from(`${pick(random, ["zz", "-1", "fffffffffffffffff", "3;ext", "1"])}\r\n`),
        payload,
        Buffer.from("\r\n"),
      ]);
      break;
    case 5:
      lines.push("transfer-encoding: chunked");
      framed = Buffer.concat([
        Buffer.from(`${payload.length.toString(16)}\r\n`),
        payload,
        Buffer.from(random() < 0.5 ? "\r\n0\r\n\r\n" : "\r\n"),
      ]);
      break;
    case 6:
      lines.push("transfer-encoding: chunked", `content-length: ${payload.length}`);
      framed = Buffer.concat([
        Buffer.from(`${payload.length.toString(16)}\r\n`),
        payload,
        Buffer.from("\r\n0\r\n\r\n"),
      ]);
      break;
    case 7:
      lines.push(
        pick(random, [
          "bad header line",
          ": empty-name",
          "x y: z",
          "x-fold: a\r\n continued",
          `x-${"h".repeat(9000)}: 1`,
          "x-ctl: a\u0001b",
        ]),
      );
      lines.push(`content-length: ${payload.length}`);
      break;
    case 8:
      for (let i = 0; i < 50 + int(random, 150); i++) lines.push(`x-many-${i}: ${i}`);
      lines.push(`content-length: ${payload.length}`);
      break;
    case 9:
      lines.push("transfer-encoding: gzip, chunked");
      framed = Buffer.concat([Buffer.from("5\r\nhello\r\n0\r\n\r\n")]);
      break;
    default:
      lines.push(`content-length: ${payload.length}`);
  }
  if (random() < 0.8) lines.push("connection: close");
  const head = Buffer.from(`${lines.join(random() < 0.95 ? "\r\n" : "\n")}\r\n\r\n`, "latin1");
  const whole = Buffer.concat([head, framed]);
  // Sometimes cut anywhere: a request line, a header or a body that never ends.
  return random() < 0.1 ? whole.subarray(0, int(random, whole.length)) : whole;
}

/** What an answer must satisfy: no 5xx; a JSON body on a 4xx is `{error: {message, type, code}}`. */
export function checkAnswer(
  status: number,
  contentType: string | undefined,
  body: string | undefined,
): string[] {
  const problems: string[] = [];
  if (status >= 500) problems.push(`status ${status}: ${(body ?? "").slice(0, 300)}`);
  if (status >= 400 && body !== undefined && body.length > 0 && /json/i.test(contentType ?? "")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      problems.push(
        `status ${status}: a JSON content-type with a body that is not JSON: ${body.slice(0, 200)}`,
      );
      return problems;
    }
    const error = (parsed as { error?: { message?: unknown; type?: unknown; code?: unknown } } | null)?.error;
    if (
      typeof error !== "object" ||
      error === null ||
      typeof error.message !== "string" ||
      typeof error.type !== "string" ||
      !("code" in error)
    ) {
      problems.push(`status ${status}: not an {error:{message,type,code}} body: ${body.slice(0, 200)}`);
    }
  }
  return problems;
}

interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body?: string;
}

/** Every complete response in the bytes of a connection (pipelined answers included); the last may be partial. */
export function parseResponses(data: Buffer, method = "GET"): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const head = data.subarray(at, end).toString("latin1").split("\r\n");
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "");
    if (!match) break;
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const status = Number(match[1]);
    at = end + 4;
    if (status === 100) continue;
    const noBody = method === "HEAD" || status === 204 || status === 304;
    const length = headers.get("content-length");
    if (noBody) {
      answers.push({ status, headers, body: "" });
    } else if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
      const parts: Buffer[] = [];
      let complete = false;
      while (at < data.length) {
        const lineEnd = data.indexOf("\r\n", at);
        if (lineEnd < 0) break;
        const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          at = lineEnd + 4;
          complete = true;
          break;
        }
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      answers.push(
        complete ? { status, headers, body: Buffer.concat(parts).toString("utf8") } : { status, headers },
      );
      if (!complete) break;
    } else if (length !== undefined) {
      const size = Number(length);
      const complete = at + size <= data.length;
      answers.push(
        complete
          ? { status, headers, body: data.subarray(at, at + size).toString("utf8") }
          : { status, headers },
      );
      at += size;
    } else {
      // Read to the close.
      answers.push({ status, headers, body: data.subarray(at).toString("utf8") });
      break;
    }
  }
  return answers;
}

function sendRaw(
  url: URL,
  bytes: Buffer,
  timeoutMs: number,
): Promise<{ data: Buffer; timedOut: boolean; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), timedOut: true, error });
    }, timeoutMs);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", (e) => {
      error = (e as NodeJS.ErrnoException).code ?? e.message;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), timedOut: false, error });
    });
    socket.write(bytes, () => socket.end());
  });
}

/**
 * fetch's dispatcher for the fuzz, with keep-alive off (undici's `pipelining: 0`), from the
 * constructor of Node's global one (undici itself is no dependency here). A fuzz that reuses no
 * connection would otherwise pile up idle keep-alive sockets (the server keeps one 65 s) until
 * the per-address connection cap refuses this client, a limit working as designed.
 */
const noKeepAlive: object | undefined = (() => {
  const global = (globalThis as Record<symbol, unknown>)[Symbol.for("undici.globalDispatcher.1")] as
    | { constructor: new (options: object) => object }
    | undefined;
  try {
    return global ? new global.constructor({ pipelining: 0 }) : undefined;
  } catch {
    return undefined;
  }
})();

/** Sends one fuzz request and checks whatever answers came back. */
export async function sendFuzzRequest(
  base: string,
  request: FuzzRequest,
  timeoutMs = 2_000,
): Promise<FuzzOutcome & { timedOut: boolean }> {
  const url = new URL(base);
  if (request.via === "raw") {
    const method = request.bytes.subarray(0, 10).toString("latin1").split(" ")[0] ?? "GET";
    const { data, timedOut, error } = await sendRaw(url, request.bytes, timeoutMs);
    const answers = parseResponses(data, method);
    const problems = answers.flatMap((a) => checkAnswer(a.status, a.headers.get("content-type"), a.body));
    return {
      statuses: answers.map((a) => a.status),
      problems,
      timedOut,
      ...(answers.length === 0 ? { noResponse: timedOut ? "timed out" : (error ?? "closed") } : {}),
    };
  }
  let response: Response;
  try {
    response = await fetch(new URL(request.path, url), {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined || request.method === "GET" || request.method === "HEAD"
        ? {}
        : { body: request.body }),
      signal: AbortSignal.timeout(timeoutMs),
      ...(noKeepAlive ? { dispatcher: noKeepAlive } : {}),
    } as RequestInit);
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    return { statuses: [], problems: [], timedOut, noResponse: (error as Error).message };
  }
  let body: string | undefined;
  try {
    body = await response.text();
  } catch {
    body = undefined;
  }
  return {
    statuses: [response.status],
    problems: checkAnswer(response.status, response.headers.get("content-type") ?? undefined, body),
    timedOut: false,
  };
}

/** Sends `requests` fuzz requests, `concurrency` at a time, and counts what came back. */
export async function runHttpFuzz(options: {
  url: string;
  seed: number;
  requests: number;
  target: HttpFuzzTarget;
  concurrency?: number;
  timeoutMs?: number;
  /** Checked between requests (a crash, a process gone): a string is a problem. */
  probe?: () => string | undefined;
}): Promise<FuzzReport> {
  const next = httpFuzzer(options.seed, options.target);
  const report: FuzzReport = {
    requests: 0,
    byClass: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
    noResponse: 0,
    timedOut: 0,
    problems: [],
    problemCount: 0,
    fiveXX: 0,
  };
  const record = (problem: string) => {
    report.problemCount++;
    if (report.problems.length < 20) report.problems.push(problem);
  };
  const worker = async () => {
    while (report.requests < options.requests) {
      report.requests++;
      const request = next();
      const outcome = await sendFuzzRequest(options.url, request, options.timeoutMs);
      for (const status of outcome.statuses) {
        const kind = `${Math.floor(status / 100)}xx`;
        report.byClass[kind] = (report.byClass[kind] ?? 0) + 1;
        if (status >= 500) report.fiveXX++;
      }
      if (outcome.noResponse !== undefined) report.noResponse++;
      if (outcome.timedOut) report.timedOut++;
      for (const problem of outcome.problems) record(`${request.via} ${request.label}: ${problem}`);
      const probe = options.probe?.();
      if (probe !== undefined) record(`${request.label}: ${probe}`);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return report;
}

/** The gateway's real routes, with the path parameters of this gateway filled in. */
export function gatewayFuzzRoutes(ids: {
  nodeAddress: string;
  accountId: string;
  keyId: string;
  instanceId?: string;
}): HttpFuzzTarget["routes"] {
  const node = ids.nodeAddress;
  const instance = ids.instanceId ?? node;
  return [
    { method: "POST", path: "/v1/chat/completions" },
    { method: "GET", path: "/v1/models" },
    { method: "GET", path: "/v1/gateway/info" },
    { method: "POST", path: "/v1/gateway/register" },
    { method: "POST", path: "/v1/gateway/heartbeat" },
    { method: "GET", path: "/v1/gateway/nodes" },
    { method: "GET", path: "/v1/gateway/accounts" },
    { method: "POST", path: "/v1/gateway/accounts" },
    { method: "POST", path: `/v1/gateway/accounts/${ids.accountId}/keys` },
    { method: "GET", path: "/v1/gateway/ledger/check" },
    { method: "GET", path: `/v1/gateway/nodes/${instance}/trust` },
    { method: "POST", path: `/v1/gateway/nodes/${instance}/challenge` },
    { method: "GET", path: "/v1/gateway/evidence?limit=5" },
    { method: "GET", path: "/v1/gateway/evidence/nope" },
    { method: "GET", path: "/v1/gateway/limits" },
    { method: "PUT", path: `/v1/gateway/limits/keys/${ids.keyId}` },
    { method: "PUT", path: `/v1/gateway/limits/accounts/${ids.accountId}` },
    { method: "DELETE", path: `/v1/gateway/limits/keys/${ids.keyId}` },
    { method: "PUT", path: "/v1/gateway/limits/nothing/x" },
    { method: "GET", path: "/v1/registry/models" },
    { method: "POST", path: "/v1/registry/models" },
    { method: "GET", path: "/v1/registry/models/some-model/1.0.0" },
    { method: "POST", path: "/v1/registry/models/some-model/1.0.0/approve" },
    { method: "GET", path: "/v1/settlement" },
    { method: "POST", path: "/v1/settlement/epochs" },
    { method: "GET", path: `/v1/settlement/proofs/${node}` },
    { method: "POST", path: `/v1/nodes/${node}/jobs` },
    { method: "GET", path: `/v1/nodes/${node}/jobs/job-1` },
    { method: "POST", path: "/v1/nodes/0xnot-an-address/jobs" },
    { method: "GET", path: "/healthz" },
    { method: "GET", path: "/metrics" },
    { method: "GET", path: "/" },
    { method: "GET", path: "*" },
  ];
}
