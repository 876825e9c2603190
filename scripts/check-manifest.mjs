// Fails when the committed oclif.manifest.json no longer matches the compiled commands.
// Regenerates the manifest in a scratch directory that mirrors the root (its package.json, with
// links to packages/ and node_modules/), and compares it with the committed one (or with the file
// given as the first argument). The committed file is never rewritten, not even for a moment:
// CLI processes started by tests running alongside read it.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const path = join(root, "oclif.manifest.json");
const expectedPath = process.argv[2] ? resolve(process.argv[2]) : path;
let expected;
try {
  expected = readFileSync(expectedPath, "utf8");
} catch {
  console.error("oclif.manifest.json is missing: run `npm run build && npm run manifest` and commit it.");
  process.exit(1);
}
const scratch = mkdtempSync(join(tmpdir(), "gbt-manifest-check-"));
let fresh;
try {
  copyFileSync(join(root, "package.json"), join(scratch, "package.json"));
  symlinkSync(join(root, "packages"), join(scratch, "packages"), "dir");
  symlinkSync(join(root, "node_modules"), join(scratch, "node_modules"), "dir");
  execFileSync(process.execPath, [join(root, "node_modules/oclif/bin/run.js"), "manifest", scratch], {
    cwd: scratch,
    stdio: "ignore",
  });
  // oclif writes each command's path relative to the scratch dir through the links' real paths:
  // rebase them on the root, where the committed manifest has them.
  const manifest = JSON.parse(readFileSync(join(scratch, "oclif.manifest.json"), "utf8"));
  for (const command of Object.values(manifest.commands ?? {})) {
    if (Array.isArray(command.relativePath)) {
      command.relativePath = relative(root, resolve(scratch, ...command.relativePath)).split(sep);
    }
  }
  fresh = JSON.stringify(manifest);
} finally {
  rmSync(scratch, { recursive: true, force: true });
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
