// What structured output costs on the embedded backend: decode tokens/s unconstrained, under a
// json_schema grammar, and under the grammar of a required tool call, on the same model, prompt and
// max tokens, modes interleaved in every round so machine drift hits all three alike. Tokens/s is
// the backend's own decode clock (done.timings: decodeTokens / decodeMs), not the caller's.
// Also the in-process embedding rate (inputs/s, a batch of 32 short inputs), the baseline a
// node-server embeddings bench compares with. Prints a table, writes bench/results/embedded-grammar.json.
//
//   npm run build && node bench/embedded-grammar.mjs [--rounds 7] [--tokens 128] [--threads 1] [--shape small|tiny]
//
// The schemas keep a random-weight model generating up to max tokens (arrays with a large minItems
// of bounded strings), so every mode decodes the same number of tokens.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createEmbeddedBackend, generateTestModel } from "@gbt/node";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    tokens: { type: "string", default: "128" },
    threads: { type: "string", default: "1" },
    shape: { type: "string", default: "small" },
  },
});
const rounds = Number(values.rounds);
const maxTokens = Number(values.tokens);
const threads = Number(values.threads);
const shape = values.shape;
const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "gbt-bench-grammar-"));
const MODEL = `gbt-test-${shape}`;

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const messages = [
  { role: "system", content: "You are a benchmark." },
  { role: "user", content: "List many short notes about lighthouses." },
];
const notes = {
  type: "object",
  properties: { notes: { type: "array", items: { type: "string", maxLength: 24 }, minItems: 200 } },
  required: ["notes"],
  additionalProperties: false,
};
const tool = { name: "save_notes", description: "Saves notes", parameters: notes };
// Every mode carries the tool, so the prompts match (the system note differs by one sentence):
// tool_choice none leaves the answer free, which is what the grammars are compared with.
const modes = {
  unconstrained: { tools: [tool], toolChoice: "none" },
  json_schema: {
    tools: [tool],
    toolChoice: "none",
    responseFormat: { type: "json_schema", name: "notes", schema: notes },
  },
  required_tool: { tools: [tool], toolChoice: "required" },
};

const { path } = await generateTestModel(join(dir, `${MODEL}.gguf`), { shape });
const backend = createEmbeddedBackend({ models: [{ id: MODEL, path }], threads, capacity: 1 });
try {
  await backend.loadModel(MODEL);
  const rates = Object.fromEntries(Object.keys(modes).map((mode) => [mode, []]));
  const decoded = Object.fromEntries(Object.keys(modes).map((mode) => [mode, []]));
  const prompts = {};
  // One warm-up request per mode (compiles and caches each grammar) before measuring.
  for (const round of [-1, ...Array.from({ length: rounds }, (_, i) => i)]) {
    for (const [mode, extra] of Object.entries(modes)) {
      const result = await backend.chat({
        model: MODEL,
        messages,
        maxTokens,
        temperature: 1,
        seed: 1000 + round,
        ...extra,
      });
      const { decodeTokens, decodeMs } = result.timings;
      if (round < 0) continue;
      rates[mode].push((decodeTokens / decodeMs) * 1000);
      decoded[mode].push(result.usage.completionTokens);
      prompts[mode] = result.usage.promptTokens;
    }
  }

  const inputs = Array.from({ length: 32 }, (_, i) => `short input number ${i} about lighthouses`);
  await backend.embed({ model: MODEL, input: inputs });
  const embedRates = [];
  let dimensions;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const result = await backend.embed({ model: MODEL, input: inputs });
    embedRates.push(inputs.length / ((performance.now() - started) / 1000));
    dimensions = result.embeddings[0].length;
  }

  const base = median(rates.unconstrained);
  const rows = Object.keys(modes).map((mode) => ({
    mode,
    decodeTokensPerSecond: Number(median(rates[mode]).toFixed(1)),
    ratio: Number((median(rates[mode]) / base).toFixed(3)),
    completionTokens: median(decoded[mode]),
    promptTokens: prompts[mode],
  }));
  console.log(`model ${MODEL}, ${threads} thread(s), ${rounds} rounds, max ${maxTokens} tokens, medians`);
  console.log("mode            decode tok/s  ratio  tokens  prompt");
  for (const row of rows) {
    console.log(
      `${row.mode.padEnd(15)} ${String(row.decodeTokensPerSecond).padStart(12)}  ${row.ratio.toFixed(3)}  ${String(row.completionTokens).padStart(6)}  ${String(row.promptTokens).padStart(6)}`,
    );
  }
  const embedRate = Number(median(embedRates).toFixed(1));
  console.log(
    `embeddings: ${embedRate} inputs/s in process (batches of ${inputs.length}, ${dimensions} dimensions)`,
  );
  const worst = Math.min(...rows.slice(1).map((row) => row.ratio));
  console.log(`grammar ratio (worst of json_schema, required_tool): ${worst.toFixed(3)} (target >= 0.80)`);

  mkdirSync(join(root, "bench/results"), { recursive: true });
  writeFileSync(
    join(root, "bench/results/embedded-grammar.json"),
    `${JSON.stringify(
      {
        model: `${MODEL} (embedded, generated random-weight test model)`,
        threads,
        rounds,
        maxTokens,
        decode: rows,
        worstGrammarRatio: worst,
        embeddings: { inputsPerSecond: embedRate, batch: inputs.length, dimensions },
        measuredAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
  console.log("wrote bench/results/embedded-grammar.json");
} finally {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
}
