/**
 * A seeded HTTP fuzz of a node's server: ~400 mutated requests over raw sockets and fetch (random
 * methods over the node's routes and the agent's prefix, broken escapes, bad headers and framing,
 * JSON mutations of a chat body). No answer may be a 5xx, every JSON error is
 * `{error: {message, type, code}}`, and afterwards the node still serves /healthz and a chat.
 * The gateway's fuzzer (@gbt/gateway/testing) is richer; this package does not depend on the
 * gateway, so this is a small copy of its idea. The seed is in the test's name.
 */
import { connect } from "node:net";
import { agentPaths, nodePaths, seededRandom } from "@gbt/protocol";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, startNodeServer } from "./node-server.js";

const SEED = Number(process.env.FUZZ_SEED ?? 7_340_033);
const REQUESTS = 400;
let server: NodeServer;

beforeAll(async () => {
  server = await startNodeServer({
    backend: createScriptedBackend(),
    logger: pino({ level: "silent" }),
    capacity: 2,
  });
});
afterAll(async () => {
  await server?.close(100);
});

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const int = (random: Random, max: number) => Math.floor(random() * max);

const ROUTES: [string, string][] = [
  ["POST", nodePaths.chatCompletions],
  ["GET", nodePaths.models],
  ["GET", nodePaths.health],
  ["GET", nodePaths.metrics],
  ["POST", agentPaths.jobs],
  ["GET", agentPaths.job("job-1")],
  ["GET", agentPaths.allowlist],
  ["GET", "/"],
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"];
const PATH_JUNK = [
  "%",
  "/%zz",
  "/%E0%A4%A",
  "/..%2f..%2f",
  "?a=%ff",
  "//",
  "/%ED%A0%80",
  `/${"x".repeat(4000)}`,
  ";x=1",
];
const VALUES: unknown[] = [
  null,
  1e308,
  -1,
  2 ** 53 + 1,
  true,
  "",
  "🦄\u202e\u0000",
  "x".repeat(50_000),
  [],
  {},
  [{ role: 5 }],
  { a: { b: { c: [[[]]] } } },
];
const KEYS = [
  "model",
  "messages",
  "max_tokens",
  "stream",
  "stream_options",
  "temperature",
  "n",
  "stop",
  "tools",
  "__proto__",
  "",
];
const chatBody = { model: "scripted", messages: [{ role: "user", content: "hi" }], max_tokens: 4 };

function deep(random: Random): unknown {
  let value: unknown = 1;
  for (let i = 0, n = 1 + int(random, 200); i < n; i++) value = random() < 0.5 ? [value] : { a: value };
  return value;
}

function jsonBody(random: Random): string {
  const body: Record<string, unknown> = { ...chatBody };
  if (random() < 0.15) return JSON.stringify({ ...body, stream: random() < 0.5 });
  for (let i = 0, n = 1 + int(random, 3); i < n; i++) {
    const key = pick(random, KEYS);
    body[key] = random() < 0.1 ? deep(random) : pick(random, VALUES);
  }
  const text = JSON.stringify(body);
  return random() < 0.2 ? text.slice(0, int(random, text.length)) : text;
}

/** One request: [method, path, headers, body, framing] (framing picks the raw socket's mutation, or fetch). */
function nextRequest(random: Random) {
  const [routeMethod, routePath] = pick(random, ROUTES);
  const asJson = random() < 0.4;
  const method = asJson ? "POST" : random() < 0.6 ? routeMethod : pick(random, METHODS);
  const base = asJson ? nodePaths.chatCompletions : routePath;
  const path = random() < 0.5 ? base + pick(random, PATH_JUNK) : base;
  const body = asJson ? jsonBody(random) : random() < 0.3 ? "\u00ff\u0000garbage{" : undefined;
  const headers: [string, string][] = [];
  if (body !== undefined)
    headers.push([
      "content-type",
      pick(random, ["application/json", "text/plain", "application/json; charset=latin1"]),
    ]);
  if (random() < 0.3)
    headers.push([
      "authorization",
      pick(random, ["Bearer x", "Bearer", "Basic Zm9v", `Bearer ${"k".repeat(9000)}`]),
    ]);
  if (random() < 0.3) headers.push(["x-junk", pick(random, ["x".repeat(20_000), "é", "", "a\tb"])]);
  if (random() < 0.2) headers.push(["accept", "text/event-stream"]);
  return { method, path, headers, body, framing: int(random, 10) };
}

function rawBytes(random: Random, r: ReturnType<typeof nextRequest>): Buffer {
  const payload = Buffer.from(r.body ?? "");
  const lines = [
    `${r.method} ${r.path} ${random() < 0.9 ? "HTTP/1.1" : pick(random, ["HTTP/1.0", "HTTP/9.9", "JUNK"])}`,
    "host: fuzz",
  ];
  for (const [name, value] of r.headers) lines.push(`${name}: ${value}`);
  let framed: Buffer = payload;
  switch (r.framing) {
    case 0:
      lines.push(`content-length: ${payload.length + 1 + int(random, 50)}`); // truncated
      break;
    case 1:
      lines.push(`content-length: ${Math.max(0, payload.length - 3)}`); // trailing bytes
      break;
    case 2:
      lines.push(`content-length: ${pick(random, ["-1", "abc", "99999999999999999999"])}`);
      break;
    case 3:
      lines.push("transfer-encoding: chunked");
      framed = Buffer.concat([
        Buffer.from(`${pick(random, ["zz", "fffffffffffffffff", payload.length.toString(16)])}\r\n`),
        payload,
        Buffer.from("\r\n"),
      ]);
      break;
    case 4:
      lines.push(
        pick(random, ["bad header line", ": x", `x-${"h".repeat(9000)}: 1`]),
        `content-length: ${payload.length}`,
      );
      break;
    default:
      lines.push(`content-length: ${payload.length}`);
  }
  if (random() < 0.8) lines.push("connection: close");
  const whole = Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), framed]);
  return random() < 0.1 ? whole.subarray(0, int(random, whole.length)) : whole;
}

function rawSend(bytes: Buffer): Promise<Buffer> {
  const url = new URL(server.url);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const timer = setTimeout(() => socket.destroy(), 1_500);
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(bytes, () => socket.end());
  });
}

/** The first response on a connection: its status, content-type and (when whole and not chunked) body. */
function firstResponse(data: Buffer): { status: number; type?: string; body?: string } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1]);
  if (!Number.isFinite(status)) return undefined;
  const header = (name: string) =>
    head
      .find((line) => line.toLowerCase().startsWith(`${name}:`))
      ?.slice(name.length + 1)
      .trim();
  const length = Number(header("content-length"));
  const body = Number.isFinite(length)
    ? data.subarray(end + 4, end + 4 + length).toString("utf8")
    : undefined;
  return { status, type: header("content-type"), body };
}

function check(status: number, type: string | undefined, body: string | undefined): string[] {
  if (status >= 500) return [`status ${status}: ${(body ?? "").slice(0, 200)}`];
  if (status < 400 || !body || !/json/.test(type ?? "")) return [];
  try {
    const error = (JSON.parse(body) as { error?: Record<string, unknown> }).error;
    if (typeof error?.message === "string" && typeof error.type === "string" && "code" in error) return [];
  } catch {}
  return [`status ${status}: not an {error:{message,type,code}} body: ${body.slice(0, 200)}`];
}

describe("node server HTTP fuzz", () => {
  it(`seed ${SEED}: ${REQUESTS} mutated requests, no 5xx, well-formed errors, still serving`, async () => {
    const random = seededRandom(SEED);
    const problems: string[] = [];
    const classes: Record<string, number> = {};
    let noResponse = 0;
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        const n = ++sent;
        const request = nextRequest(random);
        const label = `#${n} ${request.method} ${request.path.slice(0, 100)}`;
        let answer: { status: number; type?: string; body?: string } | undefined;
        if (random() < 0.6) {
          answer = firstResponse(await rawSend(rawBytes(random, request)));
        } else {
          try {
            const response = await fetch(`${server.url}${request.path}`, {
              method: request.method,
              headers: request.headers,
              ...(request.body === undefined || request.method === "GET" || request.method === "HEAD"
                ? {}
                : { body: request.body }),
              signal: AbortSignal.timeout(1_500),
            });
            answer = {
              status: response.status,
              type: response.headers.get("content-type") ?? undefined,
              body: await response.text(),
            };
          } catch {
            answer = undefined; // refused by fetch, or no answer: fine
          }
        }
        if (answer === undefined) {
          noResponse++;
          continue;
        }
        const kind = `${Math.floor(answer.status / 100)}xx`;
        classes[kind] = (classes[kind] ?? 0) + 1;
        for (const problem of check(answer.status, answer.type, answer.body))
          problems.push(`${label}: ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    console.log(`node fuzz seed ${SEED}:`, JSON.stringify({ classes, noResponse }));
    expect(problems).toEqual([]);
    expect(classes["4xx"]).toBeGreaterThan(REQUESTS / 4);

    const health = await fetch(`${server.url}${nodePaths.health}`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();
    const chat = await fetch(`${server.url}${nodePaths.chatCompletions}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(chatBody),
    });
    expect(chat.status, await chat.clone().text()).toBe(200);
    expect(((await chat.json()) as { choices: unknown[] }).choices.length).toBe(1);
  });
});
