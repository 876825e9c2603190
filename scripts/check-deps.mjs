// Fails when the packages' dependencies stop pointing one way (shared/ARCHITECTURE.md, "Layout"):
//   protocol ← store ← agent ← node;  protocol ← publish, gateway, operator, contracts;
//   everything ← devnet ← cli.
// It reads every workspace's package.json and every import in its sources, and reports:
//   - an import of another workspace that its package.json does not declare;
//   - an import reaching into another package's files (`@gbt/x/src/…`, `../../other/src/…`);
//   - a run-time edge (a `dependencies` entry, or an import from non-test code) not in LAYERS;
//   - a cycle among run-time edges; a test-only edge (devDependencies) that closes a cycle.
// Usage: node scripts/check-deps.mjs [ROOT] (default: this repository). Exit 0 when clean, 1 with
// one line per problem otherwise.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** What each package may depend on at run time; a package not listed may not be depended on. */
export const LAYERS = {
  "@gbt/protocol": [],
  "@gbt/store": ["@gbt/protocol"],
  "@gbt/publish": ["@gbt/protocol"],
  "@gbt/contracts": ["@gbt/protocol", "@gbt/store"],
  "@gbt/agent": ["@gbt/protocol", "@gbt/store"],
  "@gbt/node": ["@gbt/protocol", "@gbt/store", "@gbt/agent", "@gbt/publish"],
  "@gbt/gateway": ["@gbt/protocol", "@gbt/store", "@gbt/contracts"],
  "@gbt/operator": ["@gbt/protocol"],
  "@gbt/devnet": ["@gbt/protocol", "@gbt/store", "@gbt/contracts", "@gbt/node", "@gbt/gateway"],
  "@gbt/cli": [
    "@gbt/protocol",
    "@gbt/store",
    "@gbt/publish",
    "@gbt/contracts",
    "@gbt/agent",
    "@gbt/node",
    "@gbt/gateway",
    "@gbt/operator",
    "@gbt/devnet",
  ],
};

const SOURCE = /\.(ts|tsx|mts|js|mjs)$/;
const TEST = /(\.test\.(ts|tsx)$)|(\/testing\/)/;
const IMPORT = /(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name === "generated") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (SOURCE.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Every problem found in the workspaces under `root`, as readable lines. */
export function checkDependencies(root) {
  const rootPackage = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const workspaces = rootPackage.workspaces.map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
    return { dir, name: pkg.name, pkg };
  });
  const byDir = new Map(workspaces.map((w) => [resolve(root, w.dir), w.name]));
  const problems = [];
  const runtime = new Map(workspaces.map((w) => [w.name, new Set()]));
  const testOnly = new Map(workspaces.map((w) => [w.name, new Set()]));
  for (const { dir, name, pkg } of workspaces) {
    if (!(name in LAYERS))
      problems.push(`${name} (${dir}) has no place in LAYERS: add it to scripts/check-deps.mjs`);
    const deps = Object.keys(pkg.dependencies ?? {}).filter((d) => byDirName(d));
    const devDeps = Object.keys(pkg.devDependencies ?? {}).filter((d) => byDirName(d));
    for (const d of deps) runtime.get(name)?.add(d);
    for (const d of devDeps) testOnly.get(name)?.add(d);
    const src = join(root, dir, "src");
    let files = [];
    try {
      files = sourceFiles(src);
    } catch {
      continue;
    }
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      const where = relative(root, file);
      const isTest = TEST.test(file.split(sep).join("/"));
      for (const match of text.matchAll(IMPORT)) {
        const spec = match[1] ?? match[2];
        if (spec.startsWith(".")) {
          const target = resolve(dirname(file), spec);
          const owner = [...byDir.keys()].find((d) => target === d || target.startsWith(d + sep));
          if (owner && owner !== resolve(root, dir)) {
            problems.push(
              `${where}: imports ${spec}, a file of ${byDir.get(owner)}; import the package instead`,
            );
          }
          continue;
        }
        const target = /^(@gbt\/[^/]+)/.exec(spec)?.[1];
        if (!target) continue;
        if (target === name) {
          // Its own main entry from inside: a cycle through index.ts (its ./testing entry is fine).
          if (spec === name)
            problems.push(`${where}: imports its own package ${name}; import the file instead`);
          continue;
        }
        if (/^@gbt\/[^/]+\/(src|dist)(\/|$)/.test(spec)) {
          problems.push(`${where}: imports ${spec}, inside ${target}; use its public entry points`);
        }
        if (isTest) {
          if (!deps.includes(target) && !devDeps.includes(target)) {
            problems.push(`${where}: imports ${target}, which ${dir}/package.json does not declare`);
          }
          testOnly.get(name)?.add(target);
        } else {
          if (!deps.includes(target)) {
            problems.push(
              `${where}: imports ${target}, which ${dir}/package.json does not list in dependencies`,
            );
          }
          runtime.get(name)?.add(target);
        }
      }
    }
  }
  for (const [from, targets] of runtime) {
    for (const to of targets) {
      if (from in LAYERS && !LAYERS[from].includes(to)) {
        problems.push(
          `${from} depends on ${to}: a wrong-way edge (allowed: ${LAYERS[from].join(", ") || "none"})`,
        );
      }
    }
  }
  const cycle = findCycle(runtime);
  if (cycle) problems.push(`a dependency cycle: ${cycle.join(" → ")}`);
  for (const [from, targets] of testOnly) {
    for (const to of targets) {
      if (reaches(runtime, to, from)) {
        problems.push(`${from}'s tests use ${to}, which depends on ${from}: a cycle through tests`);
      }
    }
  }
  return problems;

  function byDirName(dep) {
    return workspaces.some((w) => w.name === dep);
  }
}

function reaches(graph, from, to, seen = new Set()) {
  if (from === to) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  for (const next of graph.get(from) ?? []) if (reaches(graph, next, to, seen)) return true;
  return false;
}

function findCycle(graph) {
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of graph.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url)));
  const problems = checkDependencies(root);
  if (problems.length > 0) {
    for (const line of problems) console.error(line);
    console.error(`check-deps: ${problems.length} problem(s); see shared/ARCHITECTURE.md "Layout (target)".`);
    process.exit(1);
  }
  console.log("check-deps: dependencies point one way");
}
