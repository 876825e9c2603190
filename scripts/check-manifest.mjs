// Fails when the committed oclif.manifest.json no longer matches the compiled commands.
// Regenerates the manifest, compares it with the committed one, and restores the committed file
// so that a failed check never silently "fixes" the working tree.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const path = `${root}/oclif.manifest.json`;
let committed;
try {
  committed = readFileSync(path, "utf8");
} catch {
  console.error("oclif.manifest.json is missing: run `npm run build && npm run manifest` and commit it.");
  process.exit(1);
}
execFileSync(process.execPath, [`${root}/node_modules/oclif/bin/run.js`, "manifest"], {
  cwd: root,
  stdio: "ignore",
});
const fresh = readFileSync(path, "utf8");
writeFileSync(path, committed);
const normalize = (text) => JSON.stringify(JSON.parse(text));
if (normalize(fresh) !== normalize(committed)) {
  console.error(
    "oclif.manifest.json is stale: run `npm run build && npm run manifest` and commit the result.",
  );
  process.exit(1);
}
console.log("oclif.manifest.json is up to date.");
