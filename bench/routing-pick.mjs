// Routing pick: the time `InstancePool.lease` takes to choose among 10,000 instances of one
// model (the lease's release is not timed). Scenarios: all idle and equal (every instance ties,
// so the health and random tie-breaks run over all of them); a steady heterogeneous load
// (ramping instances, mixed capacities, some stale, parked or below the floor, thousands of
// leases out); and a retry that excludes two instances. Target: p99 ≤ 20 µs.
// Prints a table, writes bench/results/routing-pick.json.
//
//   npx tsc -b packages/gateway && node bench/routing-pick.mjs [--instances 10000] [--picks 50000]

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { InstancePool } from "@gbt/gateway";
import { seededRandom } from "@gbt/protocol";

const { values } = parseArgs({
  options: {
    instances: { type: "string", default: "10000" },
    picks: { type: "string", default: "50000" },
  },
});
const instanceCount = Number(values.instances);
const picks = Number(values.picks);
const warmup = Math.min(5_000, picks);
const MODEL = "llama-3.1-8b-instruct";
const DAY = 86_400_000;

function fail(error) {
  throw error;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function build(kind) {
  const random = seededRandom(42);
  // The pool's clock, skewed back while registering the instances that are to be stale.
  let skew = 0;
  const pool = new InstancePool({ random: seededRandom(7) }, () => Date.now() + skew);
  const now = Date.now();
  const equal = kind === "idle-equal";
  for (let i = 0; i < instanceCount; i++) {
    // 10% stale: their last heartbeat (the registration) is a minute old.
    skew = !equal && random() < 0.1 ? -60_000 : 0;
    pool.register({
      id: `0xnode${i}/0`,
      nodeAddress: `0xnode${i}`,
      url: `http://10.0.${(i >> 8) & 255}.${i & 255}:8080`,
      models: i % 10 === 0 && !equal ? [MODEL, "qwen2.5-7b"] : [MODEL],
      declaredCapacity: equal ? 8 : 1 + Math.floor(random() * 16),
      registeredAt: equal ? now - 30 * DAY : now - random() * 10 * DAY,
      benchmarkTokPerSec: equal ? 40 : random() < 0.03 ? 3 : 10 + random() * 90,
    });
  }
  skew = 0;
  if (!equal) {
    // Park 5% with three failed requests each.
    for (let k = 0; k < instanceCount / 20; k++) {
      const id = `0xnode${Math.floor(random() * instanceCount)}/0`;
      const target = { admit: (instance) => instance.id === id };
      for (let f = 0; f < 3; f++) pool.lease(MODEL, target).lease?.release("failure");
    }
  }
  return { pool, random };
}

function run(kind) {
  const { pool, random } = build(kind);
  const outstanding = [];
  const keep = kind === "steady-load" || kind === "retry-exclude" ? 20_000 : 0;
  const samples = new Float64Array(picks);
  const exclude = kind === "retry-exclude" ? ["0xnode1/0", "0xnode2/0"] : undefined;
  const options = exclude === undefined ? {} : { exclude };
  for (let i = -warmup; i < picks; i++) {
    const t0 = process.hrtime.bigint();
    const picked = pool.lease(MODEL, options);
    const t1 = process.hrtime.bigint();
    const lease = picked.lease ?? fail(picked.error);
    if (i >= 0) samples[i] = Number(t1 - t0) / 1000;
    outstanding.push(lease);
    if (outstanding.length > keep) {
      // Release a random outstanding lease: most succeed, a few are consumer errors or failures.
      const j = Math.floor(random() * outstanding.length);
      const done = outstanding[j];
      outstanding[j] = outstanding[outstanding.length - 1];
      outstanding.pop();
      const r = random();
      done.release(r < 0.9 ? "success" : r < 0.98 ? "neutral" : "failure", {
        outputTokens: 200,
        generationMs: 200_000 / (20 + random() * 60),
      });
    }
  }
  samples.sort();
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return {
    scenario: kind,
    instances: instanceCount,
    picks,
    leasesOut: keep,
    p50_us: percentile(samples, 50),
    p90_us: percentile(samples, 90),
    p99_us: percentile(samples, 99),
    max_us: samples[samples.length - 1],
    mean_us: mean,
  };
}

const rows = ["idle-equal", "steady-load", "retry-exclude"].map(run);
const fmt = (x) => x.toFixed(2).padStart(8);
console.log(`routing pick among ${instanceCount} instances of one model, ${picks} picks per scenario (µs)`);
console.log(
  `${"scenario".padEnd(15)} ${"p50".padStart(8)} ${"p90".padStart(8)} ${"p99".padStart(8)} ${"max".padStart(8)} ${"mean".padStart(8)}`,
);
for (const r of rows) {
  console.log(
    `${r.scenario.padEnd(15)} ${fmt(r.p50_us)} ${fmt(r.p90_us)} ${fmt(r.p99_us)} ${fmt(r.max_us)} ${fmt(r.mean_us)}`,
  );
}
const worstP99 = Math.max(...rows.map((r) => r.p99_us));
console.log(`target p99 ≤ 20 µs: ${worstP99 <= 20 ? "met" : "MISSED"} (worst p99 ${worstP99.toFixed(2)} µs)`);

const dir = fileURLToPath(new URL("./results/", import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(
  `${dir}routing-pick.json`,
  `${JSON.stringify(
    {
      bench: "routing-pick",
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? "unknown",
      targetP99Us: 20,
      met: worstP99 <= 20,
      rows,
    },
    null,
    2,
  )}\n`,
);
