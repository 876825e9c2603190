// Quality of `gbt node benchmark` itself, on the embedded test model (gbt-test-tiny): N micro runs
// back to back (each the full service: calibrated prompt, warm-up, R repetitions, signed record),
// then
//   - repeatability: (max − min) / mean of the runs' decode tok/s (goal ≤ 2%),
//   - agreement: the harness's decode tok/s against the backend's own clock over the same
//     repetitions (BackendTimings; goal within ±5%),
//   - the harness's own cost per token: time spent outside the backend's iterator / output tokens.
// Prints a table, writes bench/results/benchmark-quality.json.
//
//   npm run build && node bench/benchmark-quality.mjs [--runs 5] [--repetitions 5] [--gen-tokens 128] [--prompt-tokens 256] [--threads 1]
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { probeHardware, resolvePaths, runNodeBenchmark, setupNode } from "@gbt/node";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    repetitions: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    "gen-tokens": { type: "string", default: "128" },
    "prompt-tokens": { type: "string", default: "256" },
    threads: { type: "string", default: "1" },
  },
});
const runs = Number(values.runs);
const repetitions = Number(values.repetitions);
const warmup = Number(values.warmup);
const genTokens = Number(values["gen-tokens"]);
const promptTokens = Number(values["prompt-tokens"]);
const threads = Number(values.threads);
const root = fileURLToPath(new URL("..", import.meta.url));

const paths = resolvePaths({ GBT_HOME: mkdtempSync(join(tmpdir(), "gbt-bench-quality-")) });
const hardware = await probeHardware({ dataDir: paths.dataDir });
await setupNode({ paths, probeHardware: async () => hardware, detectBackends: async () => [] });

const rows = [];
for (let i = 0; i < runs; i++) {
  const { signed } = await runNodeBenchmark({
    paths,
    mode: "micro",
    promptTokens,
    genTokens,
    repetitions,
    warmup,
    threads,
    probeHardware: async () => hardware,
  });
  const results = signed.payload.results;
  const s = results.summary;
  rows.push({
    run: i + 1,
    decodeTokPerSec: s.decodeTokPerSec.mean,
    decodeSd: s.decodeTokPerSec.sd,
    backendDecodeTokPerSec: s.backendDecodeTokPerSec.mean,
    decodeDiffPct: results.crossCheck.decodeDiffPct,
    prefillTokPerSec: s.prefillTokPerSec.mean,
    backendPrefillTokPerSec: s.backendPrefillTokPerSec.mean,
    prefillDiffPct: results.crossCheck.prefillDiffPct,
    tpotMs: s.tpotMs.mean,
    harnessMsPerToken: s.harnessMsPerToken.mean,
    withinRunVariationPct: results.decodeVariationPct,
    recordId: signed.payload.recordId,
  });
  process.stderr.write(`run ${i + 1}/${runs}: decode ${s.decodeTokPerSec.mean?.toFixed(1)} tok/s\n`);
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const decode = rows.map((r) => r.decodeTokPerSec);
const backendDecode = rows.map((r) => r.backendDecodeTokPerSec);
const variationPct = ((Math.max(...decode) - Math.min(...decode)) / mean(decode)) * 100;
const backendVariationPct =
  ((Math.max(...backendDecode) - Math.min(...backendDecode)) / mean(backendDecode)) * 100;
const diffs = rows.map((r) => r.decodeDiffPct);
const worstDiffPct = diffs.reduce((worst, d) => (Math.abs(d) > Math.abs(worst) ? d : worst), 0);
const harness = mean(rows.map((r) => r.harnessMsPerToken));
const tpot = mean(rows.map((r) => r.tpotMs));

const header = [
  "run",
  "decode tok/s",
  "± sd",
  "backend tok/s",
  "diff %",
  "prefill tok/s",
  "TPOT ms",
  "harness ms/tok",
];
const table = rows.map((r) => [
  String(r.run),
  r.decodeTokPerSec.toFixed(1),
  (r.decodeSd ?? 0).toFixed(1),
  r.backendDecodeTokPerSec.toFixed(1),
  r.decodeDiffPct.toFixed(2),
  r.prefillTokPerSec.toFixed(0),
  r.tpotMs.toFixed(4),
  r.harnessMsPerToken.toFixed(5),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
console.log(line(header));
for (const row of table) console.log(line(row));
console.log("");
console.log(
  `repeatability: decode varies ${variationPct.toFixed(2)}% (max − min) / mean over ${runs} runs (goal ≤ 2%: ${variationPct <= 2 ? "met" : "NOT met"}); the backend's own clock varies ${backendVariationPct.toFixed(2)}%`,
);
console.log(
  `agreement: client decode vs the backend's own clock, worst run ${worstDiffPct.toFixed(2)}% (goal ±5%: ${Math.abs(worstDiffPct) <= 5 ? "met" : "NOT met"})`,
);
console.log(
  `harness cost: ${(harness * 1000).toFixed(2)} µs per token = ${((harness / tpot) * 100).toFixed(3)}% of TPOT (${tpot.toFixed(4)} ms)`,
);

const report = {
  benchmark: "benchmark-quality",
  date: new Date().toISOString(),
  machine: {
    cpu: cpus()[0]?.model ?? null,
    logicalCpus: availableParallelism(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  },
  model: "gbt-test-tiny (embedded, generated test model)",
  parameters: { runs, repetitions, warmup, genTokens, promptTokens, threads },
  rows,
  summary: {
    decodeVariationPct: variationPct,
    backendDecodeVariationPct: backendVariationPct,
    worstDecodeDiffPct: worstDiffPct,
    meanDecodeDiffPct: mean(diffs),
    harnessMsPerToken: harness,
    harnessShareOfTpotPct: (harness / tpot) * 100,
    goals: {
      variationWithin2Pct: variationPct <= 2,
      agreementWithin5Pct: Math.abs(worstDiffPct) <= 5,
    },
  },
};
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(join(root, "bench/results/benchmark-quality.json"), `${JSON.stringify(report, null, 2)}\n`);
console.log("\nwrote bench/results/benchmark-quality.json");
