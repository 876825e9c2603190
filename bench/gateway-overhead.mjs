// Gateway overhead: the same upstream reached directly and through the gateway, in one run, rounds
// alternating between the paths so that machine drift hits them equally. Three processes: the
// upstream (a lean node that speaks the real link protocol: signed registration and heartbeats, no
// receipts, so it does the same work on both paths), the gateway (startGatewayServer with a real
// ledger, logging at info to a file; its CPU read with process.cpuUsage() over IPC, the ledger's
// SQLite share timed around Ledger.settleBatch) and the client (this process, a lean keep-alive
// node:http client). Prints a table, writes bench/results/gateway-overhead.json.
//
//   npx tsc -b packages/gateway && node bench/gateway-overhead.mjs [--rounds 5] [--requests 2000]
//     [--seconds 2] [--concurrency 64] [--ttft-requests 100] [--streams 256] [--chunks 64]
//     [--pace-ms 20] [--ramp-ms 250] [--phases latency,throughput,ttft,streams] [--cpu-prof]
//     [--baseline path/to/another/build/packages/gateway/dist/index.js]
//
// Phases: c=1 latency of whole responses (and the gateway's CPU per request); whole-response
// throughput at c=64 for `--seconds` per round; time to the first content chunk at c=1 (2-chunk
// streams); `--streams` paced streams opened over `--ramp-ms`, whose per-chunk delay (the client's
// receive time minus the upstream's send time, written in each chunk's text) is counted while all
// of them are open, and whose stalls (a gap over 5 × pace) are counted throughout.
// Upstream modes: `stream: false` is a zero-delay whole response (tiny JSON); `stream: true` is a
// paced SSE stream of `--chunks` content chunks `--pace-ms` apart (or max_tokens, if fewer).
// `--baseline` runs a second gateway from another build in the same rounds (before/after in one
// run); `--cpu-prof` writes one CPU profile of each gateway per phase to bench/results/gateway-profile/.
// The same script runs the children (`--role upstream`, `--role gateway`); gateway-soak.mjs
// reuses the gateway child through `startChild`.
import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "client" },
    rounds: { type: "string", default: "5" },
    requests: { type: "string", default: "2000" },
    seconds: { type: "string", default: "2" },
    concurrency: { type: "string", default: "64" },
    streams: { type: "string", default: "256" },
    chunks: { type: "string", default: "64" },
    "ramp-ms": { type: "string", default: "250" },
    "pace-ms": { type: "string", default: "20" },
    "ttft-requests": { type: "string", default: "100" },
    "cpu-prof": { type: "boolean", default: false },
    "log-level": { type: "string", default: "info" },
    phases: { type: "string", default: "latency,throughput,ttft,streams" },
    baseline: { type: "string" },
    module: { type: "string" },
  },
  // gateway-soak.mjs imports this module (for startChild) under its own flags.
  strict: false,
});

const MODEL = "bench-model";
const here = fileURLToPath(import.meta.url);

/** Replies to `{id, type}` IPC messages with `{id, value}` (or `{id, error}`). */
function serveIpc(handlers) {
  process.on("message", async (message) => {
    try {
      const value = await handlers[message.type](message);
      process.send({ id: message.id, value });
    } catch (error) {
      process.send({ id: message.id, error: String(error?.stack ?? error) });
    }
  });
}

/** A child process of this script and an `ask(type, data)` over its IPC channel. */
export async function startChild(role, { execArgv = [], args = [] } = {}) {
  const child = fork(here, ["--role", role, ...args], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = new Map();
  let next = 0;
  const ready = new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${role} child exited ${code}`)));
    child.on("message", (message) => {
      if (message.ready) {
        resolve(message.ready);
        return;
      }
      const entry = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.error) entry?.reject(new Error(`${role}: ${message.error}`));
      else entry?.resolve(message.value);
    });
  });
  const info = await ready;
  return {
    info,
    child,
    ask: (type, data = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        child.send({ id, type, ...data });
      }),
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", resolve);
        child.send({ id: -1, type: "stop" });
      }),
  };
}

function usageNow() {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return { cpuUs: cpu.user + cpu.system, rss: mem.rss, heapUsed: mem.heapUsed };
}

// ---------------------------------------------------------------------------------------------
// Upstream child: a lean node. Registers with the gateway the way a node does (signed
// NodeRegistration, signed heartbeats), serves chat without receipts.

async function runUpstream() {
  const { GATEWAY_HEARTBEAT_PATH, GATEWAY_INFO_PATH, GATEWAY_REGISTER_PATH, signObject } = await import(
    "@gbt/protocol"
  );
  const { generatePrivateKey, privateKeyToAccount } = await import("viem/accounts");
  const chunks = Number(values.chunks);
  const paceMs = Number(values["pace-ms"]);
  const account = privateKeyToAccount(generatePrivateKey());
  let sequence = Date.now();
  const nextSequence = () => {
    sequence = Math.max(sequence + 1, Date.now());
    return sequence;
  };
  let served = 0;
  const stamp = () => (performance.timeOrigin + performance.now()).toFixed(3);

  function whole(res, body) {
    const count = Math.min(8, body.max_tokens ?? 8);
    const text = Array.from({ length: count }, (_, i) => `tok${i} `).join("");
    const json = JSON.stringify({
      id: `chatcmpl-${served}`,
      object: "chat.completion",
      created: 0,
      model: body.model,
      choices: [
        { index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: "stop" },
      ],
      usage: { prompt_tokens: 5, completion_tokens: count, total_tokens: 5 + count },
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
    res.end(json);
  }

  function paced(res, body) {
    const count = Math.min(chunks, body.max_tokens ?? chunks);
    const head = `data: {"id":"chatcmpl-${served}","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(body.model)},"choices":[{"index":0,"delta":`;
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(`${head}{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`);
    let i = 0;
    const send = () => {
      if (res.destroyed) return;
      res.write(`${head}{"content":"tok${i}@${stamp()}"},"logprobs":null,"finish_reason":null}]}\n\n`);
      i += 1;
      if (i < count) {
        setTimeout(send, paceMs);
        return;
      }
      res.write(`${head}{},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
      if (body.stream_options?.include_usage) {
        res.write(
          `data: {"id":"chatcmpl-${served}","object":"chat.completion.chunk","created":0,"model":${JSON.stringify(body.model)},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":${count},"total_tokens":${5 + count}}}\n\n`,
        );
      }
      res.end("data: [DONE]\n\n");
    };
    send();
  }

  const server = createServer((req, res) => {
    if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const parts = [];
    req.on("data", (chunk) => parts.push(chunk));
    req.on("end", () => {
      served += 1;
      const body = JSON.parse(Buffer.concat(parts).toString("utf8"));
      if (body.stream) paced(res, body);
      else whole(res, body);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  let heartbeat;

  serveIpc({
    usage: () => ({ ...usageNow(), served }),
    async register({ gatewayUrl, capacity }) {
      const info = await (await fetch(new URL(GATEWAY_INFO_PATH, gatewayUrl))).json();
      const now = Math.floor(Date.now() / 1000);
      const signed = await signObject(account, {
        kind: "NodeRegistration",
        chainId: info.chainId,
        message: {
          node: account.address,
          gateway: info.address,
          url,
          capacity,
          nonce: nextSequence(),
          issuedAt: now,
          expiresAt: now + 60,
        },
        payload: { models: [{ id: MODEL }], backend: { kind: "bench" }, benchmark: null },
      });
      const response = await fetch(new URL(GATEWAY_REGISTER_PATH, gatewayUrl), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(signed),
      });
      if (!response.ok) throw new Error(`registration refused: ${response.status} ${await response.text()}`);
      heartbeat = setInterval(async () => {
        const at = Math.floor(Date.now() / 1000);
        const beat = await signObject(account, {
          kind: "Heartbeat",
          chainId: info.chainId,
          message: {
            node: account.address,
            gateway: info.address,
            seq: nextSequence(),
            inFlight: 0,
            issuedAt: at,
            expiresAt: at + 60,
          },
          payload: { models: [MODEL], capacity, health: { ok: true } },
        });
        await fetch(new URL(GATEWAY_HEARTBEAT_PATH, gatewayUrl), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(beat),
        }).catch(() => {});
      }, info.heartbeatIntervalMs / 2);
      return { address: account.address };
    },
    stop() {
      clearInterval(heartbeat);
      server.closeAllConnections();
      server.close(() => process.exit(0));
    },
  });
  process.send({ ready: { url } });
}

// ---------------------------------------------------------------------------------------------
// Gateway child: the real server (startGatewayServer), one account with a large grant and a key.

/** The bench's gateway config; the upstream listens on loopback (a baseline build older than the URL policy and the limits has neither field). */
function benchConfig(parseGatewayConfig) {
  const config = {
    port: 0,
    prices: { "*": { inputPerMillion: 0.1, outputPerMillion: 0.4 } },
    routing: { rampUpDays: 0 },
  };
  try {
    // Limits on (checked on every request, never reached), as an open gateway runs.
    return parseGatewayConfig({
      ...config,
      allowPrivateNodes: true,
      limits: {
        perKey: { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, concurrentRequests: 100_000 },
      },
    });
  } catch {
    return parseGatewayConfig(config);
  }
}

async function runGateway() {
  const { parseGatewayConfig, startGatewayServer } = await import(values.module ?? "@gbt/gateway");
  const { default: pino } = await import("pino");
  const { generatePrivateKey, privateKeyToAccount } = await import("viem/accounts");
  const dataDir = mkdtempSync(join(tmpdir(), "gbt-bench-gateway-"));
  // Logs go to a file as they would in production (pino's async destination), at --log-level.
  const logger = pino(
    { level: values["log-level"] },
    pino.destination({ dest: join(dataDir, "gateway.log"), sync: false }),
  );
  const gateway = await startGatewayServer({
    config: benchConfig(parseGatewayConfig),
    dataDir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "bench-admin-token-0123456789abcdef",
    logger,
  });
  const created = gateway.accounts.createAccount({ name: "bench", initialMicro: 1_000_000_000_000_000 });
  const apiKey = gateway.accounts.createApiKey(created.id, "bench").key;
  // The ledger's share of the gateway's time: its batched SQLite writes are synchronous, so their
  // wall time is their CPU time (on a core of their own).
  let ledgerUs = 0;
  let profiler;
  const settleBatch = gateway.ledger.settleBatch.bind(gateway.ledger);
  gateway.ledger.settleBatch = (settlements) => {
    const start = performance.now();
    try {
      return settleBatch(settlements);
    } finally {
      ledgerUs += (performance.now() - start) * 1000;
    }
  };
  serveIpc({
    usage: ({ collect }) => {
      if (collect) globalThis.gc?.();
      return { ...usageNow(), ledgerUs };
    },
    // --cpu-prof: one V8 CPU profile of the gateway per phase.
    async profile({ action, file }) {
      profiler ??= new (await import("node:inspector/promises")).Session();
      if (action === "start") {
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.start");
        return null;
      }
      const { profile } = await profiler.post("Profiler.stop");
      profiler.disconnect();
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
    async ledger() {
      await gateway.settled();
      const row = gateway.db.prepare("SELECT COUNT(*) n, COALESCE(SUM(debit), 0) d FROM usage_records").get();
      const receipts = gateway.db
        .prepare("SELECT receipt_status s, COUNT(*) n FROM usage_records GROUP BY receipt_status")
        .all();
      return {
        usageRecords: row.n,
        debitMicro: row.d,
        receipts,
        invariants: gateway.ledger.checkInvariants().ok,
      };
    },
    async stop() {
      await gateway.close(2000);
      logger.flush();
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    },
  });
  process.send({ ready: { url: gateway.url, apiKey } });
}

// ---------------------------------------------------------------------------------------------
// Client (this process).

const percentile = (list, p) => {
  if (list.length === 0) return Number.NaN;
  const sorted = Float64Array.from(list).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

/** A lean keep-alive client for one base URL; `auth` is sent as the bearer token when set. */
function client(base, auth, maxSockets) {
  const { hostname, port } = new URL(base);
  const agent = new Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
  const bodyOf = (extra) =>
    Buffer.from(
      JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 64, ...extra }),
    );
  const bodies = {
    whole: bodyOf({}),
    stream: bodyOf({ stream: true }),
    ttft: bodyOf({ stream: true, max_tokens: 2 }),
  };
  const headersOf = (body) => ({
    "content-type": "application/json",
    "content-length": body.length,
    ...(auth ? { authorization: `Bearer ${auth}` } : {}),
  });
  const options = Object.fromEntries(
    Object.entries(bodies).map(([name, body]) => [
      name,
      { agent, hostname, port, path: "/v1/chat/completions", method: "POST", headers: headersOf(body) },
    ]),
  );

  /** One whole response; resolves with its latency in ms. */
  function whole() {
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const req = request(options.whole, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode} from ${base}`));
        res.on("data", () => {});
        res.on("end", () => resolve(performance.now() - start));
      });
      req.on("error", reject);
      req.end(bodies.whole);
    });
  }

  /** One paced stream; per content chunk its delay since the upstream sent it and its gap since the last one. */
  function stream(kind = "stream") {
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const result = { ttft: Number.NaN, sentAt: [], delays: [], gaps: [], done: false };
      let last = 0;
      let buffer = "";
      const req = request(options[kind], (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode} from ${base}`));
        res.setEncoding("utf8");
        res.on("data", (text) => {
          const now = performance.now();
          const wall = performance.timeOrigin + now;
          buffer += text;
          let end = buffer.indexOf("\n\n");
          while (end >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            end = buffer.indexOf("\n\n");
            if (event === "data: [DONE]") result.done = true;
            const at = event.indexOf('"content":"tok');
            if (at < 0) continue;
            const from = event.indexOf("@", at) + 1;
            const sentAt = Number(event.slice(from, event.indexOf('"', from)));
            result.sentAt.push(sentAt);
            result.delays.push(wall - sentAt);
            if (last === 0) result.ttft = now - start;
            else result.gaps.push(now - last);
            last = now;
          }
        });
        res.on("end", () => resolve(result));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(bodies[kind]);
    });
  }

  return { whole, stream, agent };
}

async function runClient() {
  const rounds = Number(values.rounds);
  const perRound = Number(values.requests);
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const streamCount = Number(values.streams);
  const chunks = Number(values.chunks);
  const paceMs = Number(values["pace-ms"]);
  const rampMs = Number(values["ramp-ms"]);
  const ttftRequests = Number(values["ttft-requests"]);
  const phases = new Set(values.phases.split(","));
  const root = fileURLToPath(new URL("..", import.meta.url));
  const log = (line) => process.stderr.write(`${line}\n`);

  const upstream = await startChild("upstream", {
    args: ["--chunks", String(chunks), "--pace-ms", String(paceMs)],
  });
  const gateways = {};
  const builds = { gateway: null, ...(values.baseline ? { baseline: values.baseline } : {}) };
  for (const [name, module] of Object.entries(builds)) {
    gateways[name] = await startChild("gateway", {
      args: ["--log-level", values["log-level"], ...(module ? ["--module", module] : [])],
    });
    await upstream.ask("register", { gatewayUrl: gateways[name].info.url, capacity: 100_000 });
  }
  const maxSockets = Math.max(concurrency, streamCount);
  const paths = { direct: client(upstream.info.url, null, maxSockets) };
  for (const [name, gateway] of Object.entries(gateways)) {
    paths[name] = client(gateway.info.url, gateway.info.apiKey, maxSockets);
  }
  const names = Object.keys(paths);
  const order = (round) => (round % 2 === 0 ? names : [...names].reverse());
  const byName = (make) => Object.fromEntries(names.map((name) => [name, make(name)]));
  /** CPU (µs) used by the path's gateway and by the upstream while `work` runs. */
  const cpuOf = async (name, work) => {
    const gateway = gateways[name];
    const before = await Promise.all([gateway?.ask("usage"), upstream.ask("usage")]);
    const count = await work();
    const after = await Promise.all([gateway?.ask("usage"), upstream.ask("usage")]);
    return {
      gatewayUs: gateway ? after[0].cpuUs - before[0].cpuUs : 0,
      ledgerUs: gateway ? after[0].ledgerUs - before[0].ledgerUs : 0,
      upstreamUs: after[1].cpuUs - before[1].cpuUs,
      requests: count,
    };
  };
  /** Runs one phase, under the CPU profiler of every gateway with --cpu-prof. */
  const phase = async (label, work) => {
    if (!phases.has(label)) return;
    if (values["cpu-prof"])
      await Promise.all(Object.values(gateways).map((g) => g.ask("profile", { action: "start" })));
    await work();
    if (!values["cpu-prof"]) return;
    for (const [name, gateway] of Object.entries(gateways)) {
      const file = join(root, `bench/results/gateway-profile/${name}-${label}.cpuprofile`);
      log(`profile: ${await gateway.ask("profile", { action: "stop", file })}`);
    }
  };
  const addCpu = (into, cpu) => {
    into.gatewayUs += cpu.gatewayUs;
    into.ledgerUs += cpu.ledgerUs;
    into.upstreamUs += cpu.upstreamUs;
    into.requests += cpu.requests;
  };

  // Warm-up: JIT on every path, sockets open.
  for (const name of names) {
    for (let i = 0; i < 1000; i++) await paths[name].whole();
    await Promise.all(Array.from({ length: concurrency }, () => paths[name].whole()));
    await Promise.all(Array.from({ length: 32 }, () => paths[name].stream("ttft")));
  }

  // 1. Latency at concurrency 1, whole responses; CPU per request over the same requests.
  const latency = byName(() => []);
  const cpuC1 = byName(() => ({ gatewayUs: 0, ledgerUs: 0, upstreamUs: 0, requests: 0 }));
  await phase("latency", async () => {
    for (let round = 0; round < rounds; round++) {
      for (const name of order(round)) {
        const cpu = await cpuOf(name, async () => {
          for (let i = 0; i < perRound; i++) latency[name].push(await paths[name].whole());
          return perRound;
        });
        addCpu(cpuC1[name], cpu);
      }
      log(`latency c=1: round ${round + 1}/${rounds}`);
    }
  });

  // 2. Whole-response throughput at concurrency 64.
  const throughput = byName(() => ({ requests: 0, ms: 0 }));
  const cpuC64 = byName(() => ({ gatewayUs: 0, ledgerUs: 0, upstreamUs: 0, requests: 0 }));
  await phase("throughput", async () => {
    for (let round = 0; round < rounds; round++) {
      for (const name of order(round)) {
        const start = performance.now();
        const cpu = await cpuOf(name, async () => {
          const until = start + seconds * 1000;
          let done = 0;
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (performance.now() < until) {
                await paths[name].whole();
                done += 1;
              }
            }),
          );
          return done;
        });
        throughput[name].ms += performance.now() - start;
        throughput[name].requests += cpu.requests;
        addCpu(cpuC64[name], cpu);
      }
      log(`throughput c=${concurrency}: round ${round + 1}/${rounds}`);
    }
  });

  // 3. Time to first token at concurrency 1 (paced streams of 2 chunks).
  const ttft = byName(() => []);
  await phase("ttft", async () => {
    for (let round = 0; round < rounds; round++) {
      for (const name of order(round)) {
        for (let i = 0; i < ttftRequests; i++) ttft[name].push((await paths[name].stream("ttft")).ttft);
      }
      log(`ttft: round ${round + 1}/${rounds}`);
    }
  });

  // 4. 256 concurrent paced streams, opened over `--ramp-ms`; per-chunk delays counted while all
  // of them are open (chunks sent after the last stream's first chunk and before the first
  // stream's last), so that the opening burst is not what is measured.
  const streams = byName(() => ({
    delays: [],
    rampDelays: [],
    gaps: [],
    stalls: 0,
    incomplete: 0,
    ms: 0,
    cpu: { gatewayUs: 0, ledgerUs: 0, upstreamUs: 0, requests: 0 },
  }));
  await phase("streams", async () => {
    for (let round = 0; round < rounds; round++) {
      for (const name of order(round)) {
        const into = streams[name];
        let results;
        const started = performance.now();
        const cpu = await cpuOf(name, async () => {
          results = await Promise.all(
            Array.from(
              { length: streamCount },
              (_, k) =>
                new Promise((resolve, reject) =>
                  setTimeout(() => paths[name].stream().then(resolve, reject), (k * rampMs) / streamCount),
                ),
            ),
          );
          return results.reduce((sum, r) => sum + r.delays.length, 0);
        });
        into.ms += performance.now() - started;
        addCpu(into.cpu, cpu);
        const from = Math.max(...results.map((r) => r.sentAt[0] ?? Number.POSITIVE_INFINITY));
        const to = Math.min(...results.map((r) => r.sentAt.at(-1) ?? Number.NEGATIVE_INFINITY));
        for (const r of results) {
          r.delays.forEach((d, i) => {
            const sent = r.sentAt[i];
            if (sent > from && sent < to) into.delays.push(d);
            else into.rampDelays.push(d);
          });
          for (const g of r.gaps) into.gaps.push(g);
          into.stalls += r.gaps.filter((g) => g > 5 * paceMs).length;
          if (!r.done || r.delays.length !== chunks) into.incomplete += 1;
        }
      }
      log(`${streamCount} streams: round ${round + 1}/${rounds}`);
    }
  });

  const ledgers = {};
  for (const [name, gateway] of Object.entries(gateways)) {
    ledgers[name] = await gateway.ask("ledger");
    await gateway.stop();
  }
  await upstream.stop();

  // Report.
  const summary = byName((name) => {
    const rps = throughput[name].requests / (throughput[name].ms / 1000);
    const s = streams[name];
    return {
      latencyC1Ms: {
        p50: percentile(latency[name], 50),
        p90: percentile(latency[name], 90),
        p99: percentile(latency[name], 99),
        p999: percentile(latency[name], 99.9),
      },
      cpuUsPerRequest: {
        gatewayC1: cpuC1[name].gatewayUs / cpuC1[name].requests,
        ledgerC1: cpuC1[name].ledgerUs / cpuC1[name].requests,
        upstreamC1: cpuC1[name].upstreamUs / cpuC1[name].requests,
        gatewayC64: cpuC64[name].gatewayUs / cpuC64[name].requests,
        ledgerC64: cpuC64[name].ledgerUs / cpuC64[name].requests,
        upstreamC64: cpuC64[name].upstreamUs / cpuC64[name].requests,
      },
      throughputReqPerSec: rps,
      ttftP50Ms: percentile(ttft[name], 50),
      streams: {
        delayP50Ms: percentile(s.delays, 50),
        delayP99Ms: percentile(s.delays, 99),
        delayP999Ms: percentile(s.delays, 99.9),
        openingDelayP99Ms: percentile(s.rampDelays, 99),
        gatewayCpuUsPerChunk: s.cpu.gatewayUs / s.cpu.requests,
        gatewayCoreShare: s.cpu.gatewayUs / 1000 / s.ms,
        upstreamCoreShare: s.cpu.upstreamUs / 1000 / s.ms,
        steadyChunks: s.delays.length,
        gapP99Ms: percentile(s.gaps, 99),
        // A reduce, not a spread: a long run has more gaps than a call may take arguments.
        gapMaxMs: s.gaps.length > 0 ? s.gaps.reduce((a, b) => (b > a ? b : a)) : Number.NaN,
        stalls: s.stalls,
        incomplete: s.incomplete,
      },
    };
  });
  const ms = (x) => `${x.toFixed(3)} ms`;
  const us = (x) => `${x.toFixed(0)} µs`;
  const rowsFor = (name) => {
    const d = summary.direct;
    const g = summary[name];
    const added = (f) => f(g) - f(d);
    const rows = [
      [
        "latency c=1 p50 (whole)",
        ms(d.latencyC1Ms.p50),
        ms(g.latencyC1Ms.p50),
        added((x) => x.latencyC1Ms.p50),
        ms,
        "≤ 0.3 ms",
        (a) => a <= 0.3,
      ],
      [
        "latency c=1 p99 (whole)",
        ms(d.latencyC1Ms.p99),
        ms(g.latencyC1Ms.p99),
        added((x) => x.latencyC1Ms.p99),
        ms,
        "≤ 1.5 ms",
        (a) => a <= 1.5,
      ],
      [
        "gateway CPU per request, c=1",
        "—",
        us(g.cpuUsPerRequest.gatewayC1),
        g.cpuUsPerRequest.gatewayC1,
        us,
        "≤ 150 µs",
        (a) => a <= 150,
      ],
      [
        `gateway CPU per request, c=${concurrency}`,
        "—",
        us(g.cpuUsPerRequest.gatewayC64),
        g.cpuUsPerRequest.gatewayC64,
        us,
        "≤ 150 µs",
        (a) => a <= 150,
      ],
      [
        `  of which ledger writes (SQLite), c=1/c=${concurrency}`,
        "—",
        `${us(g.cpuUsPerRequest.ledgerC1)} / ${us(g.cpuUsPerRequest.ledgerC64)}`,
        g.cpuUsPerRequest.ledgerC64,
        us,
        "—",
        null,
      ],
      [
        `upstream CPU per request, c=1 (control)`,
        us(d.cpuUsPerRequest.upstreamC1),
        us(g.cpuUsPerRequest.upstreamC1),
        added((x) => x.cpuUsPerRequest.upstreamC1),
        us,
        "—",
        null,
      ],
      [
        `throughput c=${concurrency} (whole)`,
        `${d.throughputReqPerSec.toFixed(0)} req/s`,
        `${g.throughputReqPerSec.toFixed(0)} req/s`,
        g.throughputReqPerSec / d.throughputReqPerSec,
        (r) => `${(r * 100).toFixed(1)}%`,
        "≥ 25%",
        (r) => r >= 0.25,
      ],
      [
        "TTFT p50 (paced stream)",
        ms(d.ttftP50Ms),
        ms(g.ttftP50Ms),
        added((x) => x.ttftP50Ms),
        ms,
        "≤ 1 ms",
        (a) => a <= 1,
      ],
      [
        `${streamCount} streams: stalls (gap > ${5 * paceMs} ms), cut`,
        `${d.streams.stalls}, ${d.streams.incomplete}`,
        `${g.streams.stalls}, ${g.streams.incomplete}`,
        g.streams.stalls + g.streams.incomplete,
        String,
        "0",
        (a) => a === 0,
      ],
      [
        `${streamCount} streams: per-chunk delay p99 (all open)`,
        ms(d.streams.delayP99Ms),
        ms(g.streams.delayP99Ms),
        added((x) => x.streams.delayP99Ms),
        ms,
        "≤ 1 ms",
        (a) => a <= 1,
      ],
    ];
    return rows.map(([metric, direct, via, value, show, target, test]) => ({
      metric,
      direct,
      via,
      value,
      shown: show(value),
      target,
      met: test === null ? null : test(value),
    }));
  };
  const widths = [44, 16, 16, 14, 10, 6];
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("");
  const tables = {};
  for (const name of names.slice(1)) {
    tables[name] = rowsFor(name);
    console.log(`\n${name === "gateway" ? "this build" : `baseline ${values.baseline}`}:`);
    console.log(line(["metric", "direct", "via gateway", "added/ratio", "target", "met?"]));
    for (const r of tables[name]) {
      console.log(
        line([r.metric, r.direct, r.via, r.shown, r.target, r.met === null ? "" : r.met ? "yes" : "NO"]),
      );
    }
    const s = summary[name].streams;
    console.log(
      `streams, per-chunk delay while all open p50 / p99.9: direct ${ms(summary.direct.streams.delayP50Ms)} / ` +
        `${ms(summary.direct.streams.delayP999Ms)}, via gateway ${ms(s.delayP50Ms)} / ${ms(s.delayP999Ms)}; ` +
        `while opening p99: direct ${ms(summary.direct.streams.openingDelayP99Ms)}, via gateway ${ms(s.openingDelayP99Ms)}`,
    );
    console.log(
      `streams: gateway CPU ${us(s.gatewayCpuUsPerChunk)} per chunk relayed, ${(s.gatewayCoreShare * 100).toFixed(0)}% of a core ` +
        `(upstream ${(s.upstreamCoreShare * 100).toFixed(0)}%; direct rounds: upstream ${(summary.direct.streams.upstreamCoreShare * 100).toFixed(0)}%)`,
    );
    const l = summary[name].latencyC1Ms;
    const ld = summary.direct.latencyC1Ms;
    console.log(
      `latency c=1 p90 / p99.9: direct ${ms(ld.p90)} / ${ms(ld.p999)}, via gateway ${ms(l.p90)} / ${ms(l.p999)}`,
    );
    console.log(
      `ledger: ${ledgers[name].usageRecords} usage records, invariants ${ledgers[name].invariants ? "ok" : "BROKEN"}`,
    );
  }
  const command =
    `node bench/gateway-overhead.mjs --rounds ${rounds} --requests ${perRound} --seconds ${seconds} ` +
    `--concurrency ${concurrency} --streams ${streamCount} --chunks ${chunks} --pace-ms ${paceMs} ` +
    `--ttft-requests ${ttftRequests}${values.baseline ? ` --baseline ${values.baseline}` : ""}`;
  mkdirSync(join(root, "bench/results"), { recursive: true });
  writeFileSync(
    join(root, "bench/results/gateway-overhead.json"),
    `${JSON.stringify(
      {
        bench: "gateway-overhead",
        date: new Date().toISOString(),
        command,
        node: process.version,
        cpu: cpus()[0]?.model ?? "unknown",
        cores: cpus().length,
        summary,
        ledgers,
        tables: Object.fromEntries(
          Object.entries(tables).map(([name, rows]) => [name, rows.map(({ shown, ...row }) => row)]),
        ),
      },
      null,
      2,
    )}\n`,
  );
}

// Imported by gateway-soak.mjs for startChild: run only as a script.
if (process.argv[1] === here) {
  if (values.role === "upstream") await runUpstream();
  else if (values.role === "gateway") await runGateway();
  else if (values.role === "client") await runClient();
  else throw new Error("--role is client, upstream or gateway");
}
