#!/usr/bin/env node
// Forge needs a `solc` executable and cannot download one here; this stands in for it with solc-js
// from npm. Forge only calls `--version` and `--standard-json` (input on stdin, output on stdout).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const solc = require("solc");

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(
    `solc, the solidity compiler commandline interface\nVersion: ${solc.version().replace(".Emscripten.clang", ".Linux.g++")}\n`,
  );
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this solc stand-in only supports --version and --standard-json\n");
  process.exit(2);
}

// Forge passes every source in the input; imports are resolved from the allowed/base paths
// only as a fallback.
const roots = [process.cwd()];
for (let i = 0; i < args.length; i += 1) {
  if (["--base-path", "--include-path", "--allow-paths"].includes(args[i]) && args[i + 1]) {
    for (const p of args[i + 1].split(",")) roots.push(p);
  }
}
function findImport(importPath) {
  for (const root of roots) {
    const candidate = path.resolve(root, importPath);
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `file not found: ${importPath}` };
}

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const output = solc.compile(Buffer.concat(chunks).toString("utf8"), { import: findImport });
  process.stdout.write(output);
});
