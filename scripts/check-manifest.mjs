// Fails when the committed oclif.manifest.json no longer matches the compiled commands.
// Regenerates the manifest, compares it with the committed one (or with the file given as the
// first argument), and restores the committed file so a failed check never silently "fixes" the tree.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const path = `${root}/oclif.manifest.json`;
const expectedPath = process.argv[2] ? resolve(process.argv[2]) : path;
let committed;
let expected;
try {
  committed = readFileSync(path, "utf8");
  expected = readFileSync(expectedPath, "utf8");
} catch {
  console.error("oclif.manifest.json is missing: run `npm run build && npm run manifest` and commit it.");
  process.exit(1);
}
let fresh;
try {
  execFileSync(process.execPath, [`${root}/node_modules/oclif/bin/run.js`, "manifest"], {
    cwd: root,
    stdio: "ignore",
  });
  fresh = readFileSync(path, "utf8");
} finally {
  writeFileSync(path, committed);
}
// oclif loads commands concurrently, so the order of the keys in its output varies run to run:
// compare with every object's keys sorted.
const sortKeys = (value) =>
  Array.isArray(value)
    ? value.map(sortKeys)
    : value !== null && typeof value === "object"
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((key) => [key, sortKeys(value[key])]),
        )
      : value;
const normalize = (text) => JSON.stringify(sortKeys(JSON.parse(text)));
if (normalize(fresh) !== normalize(expected)) {
  console.error(
    "oclif.manifest.json is stale: run `npm run build && npm run manifest` and commit the result.",
  );
  process.exit(1);
}
console.log("oclif.manifest.json is up to date.");
