// Model pull: throughput of `gbt model pull URL --sha256` (a real child process: CLI start-up,
// download, sha256 while downloading, rename) against `curl -o` of the same file from the same
// loopback artifact server (packages/node's testing server, in this process). Rounds alternate
// which goes first; each gbt pull goes to a fresh GBT_HOME, each curl to a fresh file, so both
// write every byte. Target: gbt ≥ 80% of curl's throughput. Prints a table, writes
// bench/results/pull.json.
//
//   npx tsc -b packages/cli
//   node bench/pull.mjs [--size-mib 2048] [--rounds 3]
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "2048" },
    rounds: { type: "string", default: "3" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const rounds = Number(values.rounds);
const TARGET = 0.8;
const root = fileURLToPath(new URL("..", import.meta.url));
const gbtBin = join(root, "bin", "run.js");

const { startArtifactServer } = await import(
  new URL("../packages/node/dist/testing/index.js", import.meta.url).href
);

// A 1 MiB random block, each copy stamped with its index: incompressible and not all the same.
const block = randomBytes(1024 * 1024);
const file = Buffer.alloc(sizeMiB * 1024 * 1024);
for (let i = 0; i < sizeMiB; i++) {
  block.writeUInt32LE(i, 0);
  block.copy(file, i * 1024 * 1024);
}
const hasher = createHash("sha256");
for (let offset = 0; offset < file.length; offset += 1024 * 1024 * 1024)
  hasher.update(file.subarray(offset, offset + 1024 * 1024 * 1024));
const sha256 = hasher.digest("hex");
const server = await startArtifactServer({ files: { "/bench/model.gguf": file }, chunkBytes: 256 * 1024 });
const url = `${server.url}/bench/model.gguf`;
const work = mkdtempSync(join(tmpdir(), "gbt-bench-pull-"));

/** Runs a child (asynchronously: the server answering it lives in this process). */
function timed(command, args, env = process.env) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`${command} failed (${code}): ${stderr}${stdout}`));
      else resolve({ ms, stdout });
    });
  });
}

async function runGbt(round) {
  const home = join(work, `gbt-${round}`);
  const { ms, stdout } = await timed(
    process.execPath,
    [gbtBin, "model", "pull", url, "--sha256", sha256, "--allow-loopback-http", "--json"],
    { ...process.env, GBT_HOME: home, CI: "true" },
  );
  const result = JSON.parse(stdout);
  if (result.sha256 !== sha256 || result.bytes !== file.length)
    throw new Error("gbt installed the wrong file");
  rmSync(home, { recursive: true, force: true });
  return ms;
}

async function runCurl(round) {
  const out = join(work, `curl-${round}.bin`);
  const { ms } = await timed("curl", ["-sS", "--fail", "-o", out, url]);
  if (statSync(out).size !== file.length) throw new Error("curl wrote the wrong size");
  rmSync(out, { force: true });
  return ms;
}

/** `node bin/run.js --version`: the CLI's start-up alone, to read the ratio with. */
async function runStartup() {
  return (await timed(process.execPath, [gbtBin, "--version"])).ms;
}

const rows = [];
try {
  await runCurl("warm");
  await runGbt("warm");
  for (let round = 0; round < rounds; round++) {
    const gbtFirst = round % 2 === 0;
    const a = await (gbtFirst ? runGbt(round) : runCurl(round));
    const b = await (gbtFirst ? runCurl(round) : runGbt(round));
    const gbtMs = gbtFirst ? a : b;
    const curlMs = gbtFirst ? b : a;
    rows.push({ round: round + 1, gbtMs, curlMs, ratio: curlMs / gbtMs });
  }
  const startupMs = await runStartup();
  const mibps = (ms) => sizeMiB / (ms / 1000);
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const medianRatio = median(rows.map((r) => r.ratio));
  console.log(`pull of ${sizeMiB} MiB over loopback, ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"})`);
  console.log("round  gbt model pull         curl -o                ratio");
  for (const r of rows) {
    console.log(
      `${String(r.round).padStart(5)}  ${r.gbtMs.toFixed(0).padStart(6)} ms ${mibps(r.gbtMs).toFixed(0).padStart(5)} MiB/s  ${r.curlMs.toFixed(0).padStart(6)} ms ${mibps(r.curlMs).toFixed(0).padStart(5)} MiB/s  ${(r.ratio * 100).toFixed(1).padStart(5)}%`,
    );
  }
  console.log(
    `median ratio ${(medianRatio * 100).toFixed(1)}% (target ≥ ${TARGET * 100}%): ${medianRatio >= TARGET ? "met" : "NOT met"}`,
  );
  console.log(
    `gbt CLI start-up alone (--version): ${startupMs.toFixed(0)} ms, included in every gbt time above`,
  );
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  writeFileSync(
    join(root, "bench", "results", "pull.json"),
    `${JSON.stringify({ sizeMiB, rounds: rows, medianRatio, target: TARGET, startupMs, cpus: cpus().length, date: new Date().toISOString() }, null, 2)}\n`,
  );
} finally {
  await server.close();
  rmSync(work, { recursive: true, force: true });
}
