// Pass-through overhead: a whole chat completion (with tools, so the request is one the node must
// not re-serialise) and a streamed one, sent straight to an OpenAI-compatible server and through
// `gbt serve --backend openai` in front of it, alternating request by request in the same run so
// that machine drift hits both paths alike. The server is the fake OpenAI-compatible server of
// @gbt/node/testing with no token delay (its own cost is the same on both paths); `gbt serve` is a
// real child process. A bare node:http proxy (bench/lib/bare-proxy.mjs, its own process) runs in
// the same rounds: the floor any one-hop pass-through pays on this machine, so that gbt's own cost
// is the gap between it and `gbt serve`. Prints p50/p90 latency of each path and the added p50
// (target ≤ 0.5 ms), and writes bench/results/relay-overhead.json.
//
//   npm run build && node bench/relay-overhead.mjs [--requests 400] [--warmup 50]
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startFakeOpenAIServer } from "@gbt/node/testing";
import { runGbt, startServe } from "./lib/serve.mjs";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "400" },
    warmup: { type: "string", default: "50" },
  },
});
const requests = Number(values.requests);
const warmup = Number(values.warmup);
const root = fileURLToPath(new URL("..", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "gbt-bench-relay-"));
const env = { ...process.env, GBT_HOME: home, CI: "true" };
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

const percentile = (list, p) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

async function startBareProxy(base) {
  const child = spawn(process.execPath, [join(root, "bench/lib/bare-proxy.mjs"), base], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve) =>
    child.stdout.once("data", (d) => resolve(JSON.parse(String(d)).url)),
  );
  return { url, stop: () => child.kill() };
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  },
];
const wholeBody = JSON.stringify({
  model: "tiny",
  messages: [{ role: "user", content: "Weather in Paris?" }],
  tools,
  tool_choice: "required",
});
const streamBody = JSON.stringify({
  model: "tiny",
  messages: [{ role: "user", content: "Say hello." }],
  stream: true,
});

/** One request, read to its end: the latency until the last byte, in ms. */
function call(url, body) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.on("data", () => undefined);
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(performance.now() - start)
            : reject(new Error(`status ${res.statusCode}`)),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const fake = await startFakeOpenAIServer({ models: ["tiny"] });
await runGbt(root, env, ["setup", "--yes", "--json", "--backend", "openai", "--backend-url", fake.url]);
const serve = await startServe(root, env);
const bare = await startBareProxy(fake.url);
const results = {};
try {
  for (const [name, body] of [
    ["whole, tool call", wholeBody],
    ["streamed, 4 tokens", streamBody],
  ]) {
    const samples = { direct: [], bare: [], relayed: [] };
    const urls = {
      direct: `${fake.url}/chat/completions`, // the fake's URL is its /v1 base, as a client's baseURL is
      bare: `${bare.url}/v1/chat/completions`,
      relayed: `${serve.url}/v1/chat/completions`,
    };
    const paths = Object.keys(urls);
    for (let i = 0; i < warmup + requests; i++) {
      // Rotate which path goes first, so none always gets the warmer caches.
      for (let k = 0; k < paths.length; k++) {
        const path = paths[(i + k) % paths.length];
        const ms = await call(urls[path], body);
        if (i >= warmup) samples[path].push(ms);
      }
    }
    const p50 = (path) => percentile(samples[path], 50);
    results[name] = {
      directP50: p50("direct"),
      directP90: percentile(samples.direct, 90),
      bareP50: p50("bare"),
      relayedP50: p50("relayed"),
      relayedP90: percentile(samples.relayed, 90),
      addedP50: p50("relayed") - p50("direct"),
      bareAddedP50: p50("bare") - p50("direct"),
      gbtOverBareP50: p50("relayed") - p50("bare"),
    };
  }
} finally {
  await serve.stop();
  bare.stop();
  await fake.close();
  agent.destroy();
}

const f = (ms) => `${ms.toFixed(3)} ms`;
console.log(
  "| request | direct p50 / p90 | bare proxy p50 (added) | through gbt serve p50 / p90 | added p50 (target ≤ 0.5 ms) | gbt over the bare proxy |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const [name, r] of Object.entries(results)) {
  console.log(
    `| ${name} | ${f(r.directP50)} / ${f(r.directP90)} | ${f(r.bareP50)} (${f(r.bareAddedP50)}) | ${f(r.relayedP50)} / ${f(r.relayedP90)} | **${f(r.addedP50)}** | ${f(r.gbtOverBareP50)} |`,
  );
}
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(
  join(root, "bench/results/relay-overhead.json"),
  `${JSON.stringify({ requests, warmup, results }, null, 2)}\n`,
);
