// The outbound link against a directly reachable node, same gateway, same upstream, one run.
// Three processes: the gateway (this file with --role gateway), the two nodes (bench/lib/link-nodes.mjs:
// scripted backends with the same settings, one reached directly over loopback, one over its
// outbound link), and this consumer. Each measurement alternates the two paths round by round so
// that drift hits both alike:
//   1. TTFT: one stream at a time, time to the first content chunk; added p50 (target ≤ 1 ms).
//   2. Per-chunk delay with 128 concurrent streams: each token's text is the time the node's
//      backend made it, so each chunk's delay from backend to consumer is measured (one clock, one
//      machine); added p99 (target ≤ 1 ms).
//   3. Whole requests at concurrency 32: requests per second; link / direct (target ≥ 80%).
//   4. Time from `gbt serve --gateway URL` (a real process, embedded test model, claimed node) to
//      its first request routed through the gateway, over the link and directly (target ≤ 3 s).
// Writes bench/results/outbound-link.json.
//
//   npm run build && node bench/outbound-link.mjs [--rounds 5]
import { fork, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "consumer" },
    rounds: { type: "string", default: "5" },
    "token-ms": { type: "string", default: "20" },
    "startup-only": { type: "boolean", default: false },
    streams: { type: "string", default: "128" },
  },
});
const root = fileURLToPath(new URL("..", import.meta.url));

if (values.role === "gateway") {
  const { parseGatewayConfig, startGatewayServer } = await import("@gbt/gateway");
  const { default: pino } = await import("pino");
  const { generatePrivateKey, privateKeyToAccount } = await import("viem/accounts");
  const dataDir = mkdtempSync(join(tmpdir(), "gbt-bench-link-gw-"));
  const gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      prices: { "*": { inputPerMillion: 0.1, outputPerMillion: 0.4 } },
      routing: { rampUpDays: 0, maxCapacity: 1024 },
      limits: {
        perKey: { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, concurrentRequests: 100_000 },
      },
    }),
    dataDir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "bench-admin-token-0123456789abcdef",
    logger: pino({ level: process.env.BENCH_GATEWAY_LOG ?? "warn" }),
  });
  const created = gateway.accounts.createAccount({ name: "bench", initialMicro: 1_000_000_000_000_000 });
  const apiKey = gateway.accounts.createApiKey(created.id, "bench").key;
  process.send({ url: gateway.url, apiKey, address: gateway.address });
  process.on("SIGTERM", async () => {
    await gateway.close(500);
    process.exit(0);
  });
} else {
  await consumer();
}

function percentile(list, p) {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function consumer() {
  const rounds = Number(values.rounds);
  const tokenMs = Number(values["token-ms"]);
  const gatewayChild = fork(fileURLToPath(import.meta.url), ["--role", "gateway"], { stdio: "inherit" });
  // A bench stopped early leaves no process behind.
  process.on("exit", () => {
    gatewayChild.kill("SIGKILL");
    nodesChild?.kill("SIGKILL");
  });
  let nodesChild;
  const gateway = await new Promise((resolve) => gatewayChild.once("message", resolve));
  const nodes = spawn(
    process.execPath,
    [join(root, "bench/lib/link-nodes.mjs"), gateway.url, String(tokenMs)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  if (values["startup-only"]) {
    nodes.kill("SIGTERM");
    for (const link of ["direct", "outbound", "direct"])
      console.log(link, await timeToFirstRoute(gateway, link));
    gatewayChild.kill("SIGTERM");
    process.exit(0);
  }
  const models = await new Promise((resolve) =>
    nodes.stdout.once("data", (d) => resolve(JSON.parse(String(d)))),
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  const url = new URL("/v1/chat/completions", gateway.url);

  /** One request; for a stream, the arrival time of each content chunk. */
  function chat(model, stream, maxTokens) {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({
        model,
        stream,
        max_tokens: maxTokens,
        messages: [{ role: "user", content: "Hello" }],
      });
      const started = performance.now();
      const req = request(url, {
        agent,
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${gateway.apiKey}`,
        },
      });
      req.on("response", (res) => {
        if (res.statusCode !== 200) {
          let text = "";
          res.on("data", (d) => {
            text += d;
          });
          res.on("end", () => reject(new Error(`status ${res.statusCode}: ${text.slice(0, 300)}`)));
          return;
        }
        const chunks = [];
        /** Each content event's delay: its arrival here minus the time the node's backend stamped in it. */
        const delays = [];
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (text) => {
          if (!stream) return;
          const arrived = performance.timeOrigin + performance.now();
          buffered += text;
          let end = buffered.indexOf("\n\n");
          while (end >= 0) {
            const event = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            end = buffered.indexOf("\n\n");
            if (!event.startsWith("data: {")) continue;
            const content = JSON.parse(event.slice(6)).choices?.[0]?.delta?.content;
            if (!content) continue;
            chunks.push(arrived - performance.timeOrigin);
            delays.push(arrived - Number.parseFloat(content));
          }
        });
        res.on("end", () => resolve({ started, ended: performance.now(), chunks, delays }));
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  const paths = { direct: models.direct, link: models.link };
  // Warm-up: connections, JIT, both paths.
  for (let i = 0; i < 50; i++) for (const model of Object.values(paths)) await chat(model, true, 4);

  // 1. TTFT, one stream at a time, alternating.
  const ttft = { direct: [], link: [] };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 100; i++) {
      for (const [name, model] of Object.entries(paths)) {
        const result = await chat(model, true, 4);
        ttft[name].push(result.chunks[0] - result.started);
      }
    }
  }

  // 2. 128 concurrent streams on one path at a time, alternating; gaps between chunks of a stream.
  const gaps = { direct: [], link: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, model] of Object.entries(paths)) {
      const results = await Promise.all(
        Array.from({ length: Number(values.streams) }, () => chat(model, true, 32)),
      );
      for (const { delays } of results) gaps[name].push(...delays);
    }
  }

  // 3. Whole requests at concurrency 32, for a fixed time per path per round.
  const throughput = { direct: [], link: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, model] of Object.entries(paths)) {
      let done = 0;
      const until = performance.now() + 2000;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (performance.now() < until) {
            await chat(model, false, 1);
            done += 1;
          }
        }),
      );
      throughput[name].push(done / 2);
    }
  }

  nodes.kill("SIGTERM");

  // 4. A real `gbt serve --gateway URL`: spawn to first routed request, each way.
  const startup = {};
  for (const link of ["outbound", "direct"]) startup[link] = await timeToFirstRoute(gateway, link);

  gatewayChild.kill("SIGTERM");
  const median = (list) => percentile(list, 50);
  const result = {
    tokenMs,
    rounds,
    ttftP50Ms: { direct: median(ttft.direct), link: median(ttft.link) },
    addedTtftP50Ms: median(ttft.link) - median(ttft.direct),
    chunkDelayP50Ms: { direct: percentile(gaps.direct, 50), link: percentile(gaps.link, 50) },
    chunkDelayP99Ms: { direct: percentile(gaps.direct, 99), link: percentile(gaps.link, 99) },
    addedChunkDelayP99Ms: percentile(gaps.link, 99) - percentile(gaps.direct, 99),
    wholeRequestsPerSecond: { direct: median(throughput.direct), link: median(throughput.link) },
    throughputRatio: median(throughput.link) / median(throughput.direct),
    firstRoutedMs: startup,
  };
  console.log(
    [
      `TTFT p50: direct ${result.ttftP50Ms.direct.toFixed(3)} ms, link ${result.ttftP50Ms.link.toFixed(3)} ms, added ${result.addedTtftP50Ms.toFixed(3)} ms (target ≤ 1 ms)`,
      `per-chunk delay (backend → consumer), ${values.streams} streams, a token every ${tokenMs} ms: p50 direct ${result.chunkDelayP50Ms.direct.toFixed(3)} ms, link ${result.chunkDelayP50Ms.link.toFixed(3)} ms; p99 direct ${result.chunkDelayP99Ms.direct.toFixed(3)} ms, link ${result.chunkDelayP99Ms.link.toFixed(3)} ms, added ${result.addedChunkDelayP99Ms.toFixed(3)} ms (target ≤ 1 ms)`,
      `whole requests/s at c=32: direct ${result.wholeRequestsPerSecond.direct}, link ${result.wholeRequestsPerSecond.link}: ${(100 * result.throughputRatio).toFixed(1)}% (target ≥ 80%)`,
      `gbt serve → first routed request: outbound ${startup.outbound} ms, direct ${startup.direct} ms (target ≤ 3000 ms)`,
    ].join("\n"),
  );
  mkdirSync(join(root, "bench/results"), { recursive: true });
  writeFileSync(join(root, "bench/results/outbound-link.json"), `${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}

/** Spawns a claimed `gbt serve --gateway URL --link MODE` and times the first request routed to it. */
async function timeToFirstRoute(gateway, link) {
  const home = mkdtempSync(join(tmpdir(), `gbt-bench-link-${link}-`));
  const env = { ...process.env, GBT_HOME: home, CI: "true" };
  await new Promise((resolve, reject) => {
    const setup = spawn(
      process.execPath,
      [join(root, "bin/run.js"), "setup", "--yes", "--owner", "0x000000000000000000000000000000000000c1a1"],
      { env, stdio: "ignore" },
    );
    setup.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`setup exited ${code}`))));
  });
  // The test model is generated once per home by setup/serve; generate it before timing.
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      join(root, "bin/run.js"),
      "serve",
      "--port",
      "0",
      "--json",
      "--log-level",
      "warn",
      "--threads",
      "1",
      "--gateway",
      gateway.url,
      "--link",
      link,
    ],
    { env, stdio: ["ignore", "ignore", "inherit"] },
  );
  const body = JSON.stringify({
    model: "gbt-test-tiny",
    max_tokens: 1,
    messages: [{ role: "user", content: "hi" }],
  });
  let elapsed = null;
  while (performance.now() - started < 60_000) {
    const status = await new Promise((resolve) => {
      const req = request(new URL("/v1/chat/completions", gateway.url), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: `Bearer ${gateway.apiKey}`,
        },
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("error", () => resolve(0));
      req.end(body);
    });
    if (status === 200) {
      elapsed = Math.round(performance.now() - started);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => {
    child.on("exit", resolve);
    child.kill("SIGTERM");
  });
  return elapsed;
}
