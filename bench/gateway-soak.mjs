// Gateway soak: steady mixed load through the gateway to fake nodes that sign receipts (so the
// ledger grows and every settlement verifies a signature), sampling the gateway process's memory.
// The gateway runs in a child process with --expose-gc; every `--sample-s` seconds after the
// warm-up it runs gc() and reports heapUsed and RSS over IPC. The verdict is the least-squares slope
// of heapUsed after GC (MB/min); first and last values are printed too. Target: memory flat
// (heap slope ≤ `--max-slope` MB/min). Prints a table, writes bench/results/gateway-soak.json.
//
//   npx tsc -b packages/gateway && node bench/gateway-soak.mjs [--seconds 600] [--rate 100]
//     [--nodes 3] [--sample-s 10] [--warmup-s min(60, seconds / 2)] [--max-slope 0.25]
//
// Mix per request: 45% whole, 35% stream with usage, 5% stream from a paced node (10 ms a chunk),
// 5% paced stream the consumer drops after its first chunk, 5% invalid JSON (400), 5% unknown
// model (404). Open loop at `--rate` requests/s with at most 64 in flight; nodes heartbeat every 5 s.
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startFakeNode } from "@gbt/gateway/testing";
import { startChild } from "./gateway-overhead.mjs";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "600" },
    rate: { type: "string", default: "100" },
    nodes: { type: "string", default: "3" },
    "sample-s": { type: "string", default: "10" },
    "warmup-s": { type: "string" },
    "max-slope": { type: "string", default: "0.25" },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const nodeCount = Number(values.nodes);
const sampleMs = Number(values["sample-s"]) * 1000;
const warmupMs = Number(values["warmup-s"] ?? Math.min(60, seconds / 2)) * 1000;
const maxSlope = Number(values["max-slope"]);
const MAX_IN_FLIGHT = 64;
const MB = 1024 * 1024;
const log = (line) => process.stderr.write(`${line}\n`);

const gateway = await startChild("gateway", { execArgv: ["--expose-gc"], args: ["--log-level", "info"] });
const gatewayUrl = gateway.info.url;
const nodes = [];
for (let i = 0; i < nodeCount; i++) {
  const node = await startFakeNode({ models: ["soak-model"], capacity: 64, tokens: 16 });
  const response = await node.register(gatewayUrl);
  if (!response.ok) throw new Error(`node registration refused: ${response.status}`);
  nodes.push(node);
}
const paced = await startFakeNode({ models: ["soak-paced"], capacity: 64, tokens: 16, tokenDelayMs: 10 });
if (!(await paced.register(gatewayUrl)).ok) throw new Error("paced node registration refused");
nodes.push(paced);
const heartbeat = setInterval(() => {
  for (const node of nodes) node.heartbeat(gatewayUrl).catch(() => {});
}, 5_000);

const { hostname, port } = new URL(gatewayUrl);
const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
const bodyOf = (extra) =>
  Buffer.from(
    JSON.stringify({
      model: "soak-model",
      messages: [{ role: "user", content: "Tell me about lighthouses." }],
      max_tokens: 64,
      ...extra,
    }),
  );
const kinds = [
  { name: "whole", share: 45, body: bodyOf({}), status: 200 },
  {
    name: "stream",
    share: 35,
    body: bodyOf({ stream: true, stream_options: { include_usage: true } }),
    status: 200,
  },
  { name: "dropped", share: 5, body: bodyOf({ model: "soak-paced", stream: true }), status: 200, drop: true },
  { name: "paced", share: 5, body: bodyOf({ model: "soak-paced", stream: true }), status: 200 },
  { name: "bad-json", share: 5, body: Buffer.from("{not json"), status: 400 },
  { name: "no-model", share: 5, body: bodyOf({ model: "no-such-model" }), status: 404 },
];
const counts = Object.fromEntries(kinds.map((k) => [k.name, { ok: 0, unexpected: 0 }]));
let inFlight = 0;
let skipped = 0;
let sent = 0;

function send(kind) {
  inFlight += 1;
  sent += 1;
  const done = (ok) => {
    inFlight -= 1;
    counts[kind.name][ok ? "ok" : "unexpected"] += 1;
  };
  const req = request(
    {
      agent,
      hostname,
      port,
      path: "/v1/chat/completions",
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": kind.body.length,
        authorization: `Bearer ${gateway.info.apiKey}`,
      },
    },
    (res) => {
      const ok = res.statusCode === kind.status;
      if (kind.drop) {
        res.once("data", () => {
          req.destroy();
          done(ok);
        });
        res.on("error", () => {});
        return;
      }
      res.resume();
      res.on("end", () => done(ok));
      res.on("error", () => done(false));
    },
  );
  req.on("error", () => {
    if (!kind.drop) done(false);
  });
  req.end(kind.body);
}

// Open loop: every 10 ms, the requests due by now, each kind by its share.
const wheel = kinds.flatMap((k) => Array.from({ length: k.share }, () => k));
let due = 0;
let turn = 0;
const started = performance.now();
const ticker = setInterval(() => {
  due += rate / 100;
  while (due >= 1) {
    due -= 1;
    const kind = wheel[(turn++ * 37) % wheel.length];
    if (inFlight >= MAX_IN_FLIGHT) skipped += 1;
    else send(kind);
  }
}, 10);

const samples = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
await sleep(warmupMs);
log(
  `warm-up done (${(warmupMs / 1000).toFixed(0)} s, ${sent} requests); sampling every ${sampleMs / 1000} s`,
);
for (;;) {
  const usage = await gateway.ask("usage", { collect: true });
  const atMin = (performance.now() - started) / 60_000;
  samples.push({ minute: atMin, heapUsedMB: usage.heapUsed / MB, rssMB: usage.rss / MB, requests: sent });
  log(
    `t=${(atMin * 60).toFixed(0)} s heapUsed ${(usage.heapUsed / MB).toFixed(2)} MB rss ${(usage.rss / MB).toFixed(1)} MB requests ${sent}`,
  );
  if (performance.now() - started + sampleMs > seconds * 1000) break;
  await sleep(sampleMs);
}
clearInterval(ticker);
while (inFlight > 0) await sleep(50);
clearInterval(heartbeat);
const ledger = await gateway.ask("ledger");
await gateway.stop();
await Promise.all(nodes.map((node) => node.close()));
agent.destroy();

/** Least-squares slope of y over x. */
function slope(points, y) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.minute, 0) / n;
  const my = points.reduce((s, p) => s + p[y], 0) / n;
  const num = points.reduce((s, p) => s + (p.minute - mx) * (p[y] - my), 0);
  const den = points.reduce((s, p) => s + (p.minute - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}
const heapSlope = slope(samples, "heapUsedMB");
const rssSlope = slope(samples, "rssMB");
const first = samples[0];
const last = samples.at(-1);
const unexpected = Object.values(counts).reduce((s, c) => s + c.unexpected, 0);
const perRequestBytes =
  last.requests > first.requests
    ? ((last.heapUsedMB - first.heapUsedMB) * MB) / (last.requests - first.requests)
    : 0;
const met = Math.abs(heapSlope) <= maxSlope && unexpected === 0 && ledger.invariants;

console.log(
  `gateway soak: ${seconds} s at ${rate} req/s (${sent} requests, ${skipped} skipped at the in-flight cap), ${samples.length} samples after ${(warmupMs / 1000).toFixed(0)} s warm-up`,
);
console.log(
  `${"metric".padEnd(34)}${"first".padStart(10)}${"last".padStart(10)}${"slope MB/min".padStart(14)}`,
);
console.log(
  `${"heapUsed after GC (MB)".padEnd(34)}${first.heapUsedMB.toFixed(2).padStart(10)}${last.heapUsedMB.toFixed(2).padStart(10)}${heapSlope.toFixed(3).padStart(14)}`,
);
console.log(
  `${"RSS (MB)".padEnd(34)}${first.rssMB.toFixed(1).padStart(10)}${last.rssMB.toFixed(1).padStart(10)}${rssSlope.toFixed(3).padStart(14)}`,
);
console.log(`heap change per request between first and last sample: ${perRequestBytes.toFixed(1)} bytes`);
console.log(
  `requests: ${Object.entries(counts)
    .map(([name, c]) => `${name} ${c.ok}${c.unexpected > 0 ? ` (+${c.unexpected} unexpected)` : ""}`)
    .join(", ")}`,
);
console.log(
  `ledger: ${ledger.usageRecords} usage records (${ledger.receipts.map((r) => `${r.s} ${r.n}`).join(", ")}), invariants ${ledger.invariants ? "ok" : "BROKEN"}`,
);
// The heap still grows for about a minute after start (JIT code, caches filling): a short window
// mostly measures that.
const windowMin = last.minute - first.minute;
const verdict = `${met ? "met" : "NOT MET"}${windowMin < 5 ? ` (indicative only: ${windowMin.toFixed(1)} min of samples, judge on ≥ 5)` : ""}`;
console.log(`target heap slope ≤ ${maxSlope} MB/min, no unexpected answers, ledger balanced: ${verdict}`);

const dir = fileURLToPath(new URL("./results/", import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}gateway-soak.json`,
  `${JSON.stringify(
    {
      bench: "gateway-soak",
      date: new Date().toISOString(),
      command: `node bench/gateway-soak.mjs --seconds ${seconds} --rate ${rate} --nodes ${nodeCount} --sample-s ${sampleMs / 1000} --warmup-s ${warmupMs / 1000}`,
      node: process.version,
      cpu: cpus()[0]?.model ?? "unknown",
      requests: sent,
      skipped,
      counts,
      heapSlopeMBPerMin: heapSlope,
      rssSlopeMBPerMin: rssSlope,
      heapBytesPerRequest: perRequestBytes,
      maxSlopeMBPerMin: maxSlope,
      met,
      samplingMinutes: windowMin,
      ledger,
      samples,
    },
    null,
    2,
  )}\n`,
);
