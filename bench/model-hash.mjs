// Artifact hashing: throughput of gbt's streaming sha256 (`sha256File` from @gbt/protocol, what
// `gbt model publish` and `gbt model verify` run) against coreutils `sha256sum` on the same
// generated file, with the file in the page cache for both (each pass runs both, alternating
// which goes first). gbt's hasher runs in its own process so its peak RSS is its own; an idle
// Node process's peak RSS is measured the same way as the baseline. Target: ≥ 80% of sha256sum.
// Prints a table, writes bench/results/model-hash.json.
//
//   npx tsc -p packages/protocol/tsconfig.json && npx tsc -p packages/node/tsconfig.json
//   node bench/model-hash.mjs [--size-mib 1024] [--passes 3] [--chunk-kib 1024]
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "1024" },
    passes: { type: "string", default: "3" },
    "chunk-kib": { type: "string", default: "1024" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const passes = Number(values.passes);
const chunkBytes = Number(values["chunk-kib"]) * 1024;
const TARGET = 0.8;

const dir = mkdtempSync(join(tmpdir(), "gbt-model-hash-"));
const file = join(dir, "artifact.bin");
try {
  // A 1 MiB random block, each copy stamped with its index: incompressible and not all the same.
  const block = randomBytes(1024 * 1024);
  const expected = createHash("sha256");
  const fd = openSync(file, "w");
  for (let i = 0; i < sizeMiB; i++) {
    block.writeUInt32LE(i, 0);
    writeSync(fd, block);
    expected.update(block);
  }
  closeSync(fd);
  const expectedHex = expected.digest("hex");

  const protocolDist = new URL("../packages/protocol/dist/index.js", import.meta.url).href;
  const child = `
    const { sha256File } = await import(${JSON.stringify(protocolDist)});
    const started = process.hrtime.bigint();
    const digest = await sha256File(${JSON.stringify(file)}, { chunkBytes: ${chunkBytes} });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(JSON.stringify({ ...digest, ms, maxRssKiB: process.resourceUsage().maxRSS }));
  `;
  const idle = `
    await import(${JSON.stringify(protocolDist)});
    process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS }));
  `;
  const runGbt = () => {
    const out = spawnSync(process.execPath, ["--input-type=module", "-e", child], { encoding: "utf8" });
    if (out.status !== 0) throw new Error(out.stderr);
    return JSON.parse(out.stdout);
  };
  const runSha256sum = () => {
    const started = process.hrtime.bigint();
    const out = execFileSync("sha256sum", [file], { encoding: "utf8" });
    return { sha256: out.split(" ")[0], ms: Number(process.hrtime.bigint() - started) / 1e6 };
  };
  // Warm the page cache (and check both agree with the hash computed while writing).
  if (runSha256sum().sha256 !== expectedHex) throw new Error("sha256sum disagrees");
  const rows = [];
  for (let pass = 1; pass <= passes; pass++) {
    const order = pass % 2 === 1 ? ["sha256sum", "gbt"] : ["gbt", "sha256sum"];
    const result = {};
    for (const which of order) result[which] = which === "gbt" ? runGbt() : runSha256sum();
    if (result.gbt.sha256 !== expectedHex || result.gbt.size !== sizeMiB * 1024 * 1024) {
      throw new Error("gbt's hash is wrong");
    }
    rows.push({
      pass,
      sha256sumMs: result.sha256sum.ms,
      gbtMs: result.gbt.ms,
      ratio: result.sha256sum.ms / result.gbt.ms,
      gbtMaxRssMiB: result.gbt.maxRssKiB / 1024,
    });
  }
  const idleRss = JSON.parse(
    spawnSync(process.execPath, ["--input-type=module", "-e", idle], { encoding: "utf8" }).stdout,
  );
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const mibPerS = (ms) => (sizeMiB / ms) * 1000;
  const summary = {
    sizeMiB,
    chunkKiB: chunkBytes / 1024,
    passes,
    sha256sumMiBPerS: mibPerS(median(rows.map((r) => r.sha256sumMs))),
    gbtMiBPerS: mibPerS(median(rows.map((r) => r.gbtMs))),
    ratio: median(rows.map((r) => r.ratio)),
    target: TARGET,
    gbtPeakRssMiB: Math.max(...rows.map((r) => r.gbtMaxRssMiB)),
    idleNodePeakRssMiB: idleRss.maxRssKiB / 1024,
  };
  summary.pass = summary.ratio >= TARGET;
  console.log(
    `model-hash: ${sizeMiB} MiB file, ${chunkBytes / 1024} KiB chunks, ${passes} passes, ${cpus()[0]?.model ?? "cpu"}`,
  );
  console.log("pass  sha256sum ms   gbt ms   ratio   gbt peak RSS");
  for (const r of rows) {
    console.log(
      `${String(r.pass).padStart(4)}  ${r.sha256sumMs.toFixed(0).padStart(12)}  ${r.gbtMs.toFixed(0).padStart(7)}  ${r.ratio.toFixed(3).padStart(6)}  ${r.gbtMaxRssMiB.toFixed(1).padStart(9)} MiB`,
    );
  }
  console.log(
    `median: sha256sum ${summary.sha256sumMiBPerS.toFixed(0)} MiB/s, gbt ${summary.gbtMiBPerS.toFixed(0)} MiB/s, ratio ${summary.ratio.toFixed(3)} (target ≥ ${TARGET}) ${summary.pass ? "PASS" : "FAIL"}`,
  );
  console.log(
    `peak RSS: gbt hasher ${summary.gbtPeakRssMiB.toFixed(1)} MiB vs an idle Node importing @gbt/node ${summary.idleNodePeakRssMiB.toFixed(1)} MiB (file ${sizeMiB} MiB)`,
  );
  const resultsDir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, "model-hash.json"),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, summary, rows }, null, 2)}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
