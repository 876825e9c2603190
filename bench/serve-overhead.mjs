// Serving overhead: `gbt serve` (real process, loopback HTTP, SSE) against calling the embedded
// backend in process, same model, same thread count, same run. Rounds alternate between the two
// paths so that machine drift hits both equally. Prints a table, writes bench/results/serve-overhead.json.
//
//   npm run build && node bench/serve-overhead.mjs [--shape tiny|medium] [--rounds 5] [--requests 8] [--tokens 256] [--threads 1]
//     [--baseline path/to/another/checkout]
//
// `--baseline` serves a second `gbt serve` from another built checkout (its bin/run.js) in the same
// rounds, so that a change's before and after are measured together.
//
// `tiny` is the pipeline-test model (~0.35 ms per token here: any fixed per-token cost shows up
// large); `medium` is a generated ~27M-parameter random model whose per-token work (a few ms) is
// closer to a real model's, so the ratio shows what a served model actually loses.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildBackend, generateTestModel, resolvePaths } from "@gbt/node";
import { runGbt, startServe } from "./lib/serve.mjs";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    requests: { type: "string", default: "8" },
    tokens: { type: "string", default: "256" },
    threads: { type: "string", default: "1" },
    shape: { type: "string", default: "tiny" },
    baseline: { type: "string" },
  },
});
const rounds = Number(values.rounds);
const perRound = Number(values.requests);
const maxTokens = Number(values.tokens);
const threads = Number(values.threads);
const root = fileURLToPath(new URL("..", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "gbt-bench-"));
const env = { ...process.env, GBT_HOME: home, CI: "true" };
const shape = values.shape;
if (shape !== "tiny" && shape !== "medium") throw new Error("--shape is tiny or medium");
const MEDIUM = {
  name: "gbt-test-medium",
  embeddingLength: 512,
  blockCount: 8,
  headCount: 8,
  headCountKv: 8,
  feedForwardLength: 1536,
  contextLength: 2048,
  tensorType: "F16",
};
const MODEL = shape === "tiny" ? "gbt-test-tiny" : "gbt-test-medium";
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const messages = [
  { role: "user", content: "Benchmark prompt: tell me a long story about a lighthouse keeper." },
];

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/** `gbt serve` from `checkout` with this run's threads, capacity and model. */
const serveFrom = (capacity, checkout = root) =>
  startServe(checkout, env, ["--threads", String(threads), "--capacity", String(capacity), ...modelArgs]);

/** One streamed request through HTTP (node:http, keep-alive: a lean client); TTFT and decode rate measured at the client. */
function viaServe(url) {
  const body = JSON.stringify({
    model: MODEL,
    messages,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let first;
    let last;
    let usage;
    let buffer = "";
    const req = request(
      `${url}/v1/chat/completions`,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          buffer += chunk;
          let index = buffer.indexOf("\n\n");
          while (index >= 0) {
            const event = buffer.slice(0, index);
            buffer = buffer.slice(index + 2);
            index = buffer.indexOf("\n\n");
            if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
            if (event.includes('"usage"')) usage = JSON.parse(event.slice(6)).usage;
            else if (!event.includes('"delta":{}') && !event.includes('"role"')) {
              const now = performance.now();
              first ??= now;
              last = now;
            }
          }
        });
        res.on("end", () =>
          resolve({
            ttft: first - start,
            decodeTokPerSec: (usage.completion_tokens - 1) / ((last - first) / 1000),
            tokens: usage.completion_tokens,
            end: performance.now(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One streamed request in process, measured the same way. */
async function inProcess(backend) {
  const start = performance.now();
  let first;
  let last;
  let usage;
  for await (const event of backend.chatStream({ model: MODEL, messages, maxTokens, temperature: 0 })) {
    if (event.type === "delta") {
      const now = performance.now();
      first ??= now;
      last = now;
    } else usage = event.usage;
  }
  return {
    ttft: first - start,
    decodeTokPerSec: (usage.completionTokens - 1) / ((last - first) / 1000),
    tokens: usage.completionTokens,
    end: performance.now(),
  };
}

await runGbt(root, env, ["setup", "--yes", "--json"]);
const paths = resolvePaths(env);
let modelArgs = [];
let modelSetting = MODEL;
if (shape === "medium") {
  const written = await generateTestModel(join(paths.modelsDir, `${MODEL}.gguf`), { shape: MEDIUM });
  modelArgs = ["--model", written.path];
  modelSetting = written.path;
}
const { backend } = await buildBackend(
  { kind: "embedded", model: modelSetting, threads, capacity: 4 },
  paths,
);
const serve = await serveFrom(4);
const baseline = values.baseline ? await serveFrom(4, values.baseline) : undefined;
const results = { inProcess: [], serve: [], ...(baseline ? { baseline: [] } : {}) };
await inProcess(backend); // warm-up every path
await viaServe(serve.url);
if (baseline) await viaServe(baseline.url);
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < perRound; i++) results.inProcess.push(await inProcess(backend));
  for (let i = 0; i < perRound; i++) results.serve.push(await viaServe(serve.url));
  if (baseline) for (let i = 0; i < perRound; i++) results.baseline.push(await viaServe(baseline.url));
  process.stderr.write(`round ${round + 1}/${rounds}\n`);
}

// Throughput at concurrency 4 through gbt serve: total completion tokens / wall time.
async function concurrent(fn, n, count) {
  const start = performance.now();
  let tokens = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = 0; i < count; i++) {
        // Await first: `tokens += await fn()` reads `tokens` before awaiting and loses updates.
        const result = await fn();
        tokens += result.tokens;
      }
    }),
  );
  return tokens / ((performance.now() - start) / 1000);
}
const c4Serve = await concurrent(() => viaServe(serve.url), 4, 4);
const c1Serve = await concurrent(() => viaServe(serve.url), 1, 8);
const c4InProcess = await concurrent(() => inProcess(backend), 4, 4);
const c4Baseline = baseline ? await concurrent(() => viaServe(baseline.url), 4, 4) : undefined;
await serve.stop();
await baseline?.stop();
await backend.close();

const summary = {};
for (const [name, runs] of Object.entries(results)) {
  summary[name] = {
    decodeTokPerSecMean: mean(runs.map((r) => r.decodeTokPerSec)),
    ttftP50Ms: percentile(
      runs.map((r) => r.ttft),
      50,
    ),
    ttftP99Ms: percentile(
      runs.map((r) => r.ttft),
      99,
    ),
    requests: runs.length,
  };
}
const decodeRatio = summary.serve.decodeTokPerSecMean / summary.inProcess.decodeTokPerSecMean;
const addedTtftP50 = summary.serve.ttftP50Ms - summary.inProcess.ttftP50Ms;
const report = {
  date: new Date().toISOString(),
  command: `node bench/serve-overhead.mjs --shape ${shape} --rounds ${rounds} --requests ${perRound} --tokens ${maxTokens} --threads ${threads}${values.baseline ? ` --baseline ${values.baseline}` : ""}`,
  model: MODEL,
  threads,
  maxTokens,
  summary,
  decodeRatio,
  addedTtftP50Ms: addedTtftP50,
  throughputTokPerSec: {
    serveConcurrency1: c1Serve,
    serveConcurrency4: c4Serve,
    inProcessConcurrency4: c4InProcess,
    ...(c4Baseline !== undefined ? { baselineConcurrency4: c4Baseline } : {}),
  },
  ...(baseline
    ? { baselineDecodeRatio: summary.baseline.decodeTokPerSecMean / summary.inProcess.decodeTokPerSecMean }
    : {}),
};
const rows = [
  ["path", "decode tok/s (mean)", "TTFT p50 ms", "TTFT p99 ms", "requests"],
  ...Object.entries(summary).map(([name, s]) => [
    name,
    s.decodeTokPerSecMean.toFixed(1),
    s.ttftP50Ms.toFixed(2),
    s.ttftP99Ms.toFixed(2),
    String(s.requests),
  ]),
];
for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 12 : 20)).join(""));
console.log(
  `\ndecode ratio serve/in-process: ${(decodeRatio * 100).toFixed(1)}%   added TTFT p50: ${addedTtftP50.toFixed(2)} ms`,
);
if (baseline) {
  console.log(
    `baseline (${values.baseline}) decode ratio: ${((summary.baseline.decodeTokPerSecMean / summary.inProcess.decodeTokPerSecMean) * 100).toFixed(1)}%   its c=4 throughput: ${c4Baseline.toFixed(0)} tok/s`,
  );
}
console.log(
  `system throughput through gbt serve: c=1 ${c1Serve.toFixed(0)} tok/s, c=4 ${c4Serve.toFixed(0)} tok/s (in process c=4: ${c4InProcess.toFixed(0)} tok/s)`,
);
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(
  join(root, `bench/results/serve-overhead-${shape}.json`),
  `${JSON.stringify(report, null, 2)}\n`,
);
