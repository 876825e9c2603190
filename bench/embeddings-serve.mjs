// Embeddings through `gbt serve` (a real child process, loopback HTTP, `POST /v1/embeddings`)
// against the embedded backend's embed() in process: same generated model, same thread count,
// the same batch of 32 short inputs, rounds alternating between the two paths so machine drift
// hits both. Prints inputs/s of each (medians) and the ratio (target ≥ 90%); writes
// bench/results/embeddings-serve.json.
//
//   npm run build && node bench/embeddings-serve.mjs [--rounds 9] [--batch 32] [--threads 1] [--shape small|tiny]
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createEmbeddedBackend, generateTestModel, resolvePaths } from "@gbt/node";
import { runGbt, startServe } from "./lib/serve.mjs";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "9" },
    batch: { type: "string", default: "32" },
    threads: { type: "string", default: "1" },
    shape: { type: "string", default: "small" },
  },
});
const rounds = Number(values.rounds);
const batch = Number(values.batch);
const threads = Number(values.threads);
const shape = values.shape;
const MODEL = `gbt-test-${shape}`;
const root = fileURLToPath(new URL("..", import.meta.url));
const home = mkdtempSync(join(tmpdir(), "gbt-bench-embed-"));
const env = { ...process.env, GBT_HOME: home, CI: "true" };
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

function viaServe(url, model, inputs) {
  const body = JSON.stringify({ model, input: inputs, encoding_format: "float" });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      `${url}/v1/embeddings`,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}: ${text}`));
          const answer = JSON.parse(text);
          if (answer.data.length !== inputs.length) return reject(new Error("wrong number of vectors"));
          resolve(inputs.length / ((performance.now() - started) / 1000));
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

await runGbt(root, env, ["setup", "--yes", "--json"]);
const paths = resolvePaths(env);
const { path } = await generateTestModel(join(paths.modelsDir, `${MODEL}.gguf`), { shape });
const backend = createEmbeddedBackend({ models: [{ id: MODEL, path }], threads, capacity: 1 });
const serve = await startServe(root, env, ["--threads", String(threads), "--model", path]);
const servedModel = MODEL;
const inputs = Array.from({ length: batch }, (_, i) => `short input number ${i} about lighthouses`);
const inProcess = [];
const served = [];
try {
  // Warm-up: both load the model and create their embedding context.
  await backend.embed({ model: MODEL, input: inputs });
  await viaServe(serve.url, servedModel, inputs);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ["in", "serve"] : ["serve", "in"];
    for (const path of order) {
      if (path === "in") {
        const started = performance.now();
        await backend.embed({ model: MODEL, input: inputs });
        inProcess.push(inputs.length / ((performance.now() - started) / 1000));
      } else served.push(await viaServe(serve.url, servedModel, inputs));
    }
    process.stderr.write(`round ${round + 1}/${rounds}\n`);
  }
} finally {
  await serve.stop();
  await backend.close();
  agent.destroy();
}
const ratio = median(served) / median(inProcess);
console.log(`model ${MODEL}, ${threads} thread(s), batches of ${batch}, ${rounds} rounds, medians`);
console.log(`| path | inputs/s |`);
console.log(`| --- | --- |`);
console.log(`| in process (embed()) | ${median(inProcess).toFixed(1)} |`);
console.log(`| through gbt serve (POST /v1/embeddings) | ${median(served).toFixed(1)} |`);
console.log(`ratio: ${(ratio * 100).toFixed(1)}% (target ≥ 90%)`);
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(
  join(root, "bench/results/embeddings-serve.json"),
  `${JSON.stringify({ model: MODEL, threads, batch, rounds, inProcess, served, ratio }, null, 2)}\n`,
);
