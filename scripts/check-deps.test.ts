import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script, no types
import { checkDependencies } from "./check-deps.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));

/** A scratch monorepo: `packages` maps a name to its dependencies and its source files. */
function monorepo(
  packages: Record<string, { deps?: string[]; devDeps?: string[]; files?: Record<string, string> }>,
) {
  const dir = mkdtempSync(join(tmpdir(), "gbt-deps-"));
  const workspaces = Object.keys(packages).map((name) => `packages/${name}`);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ workspaces }));
  for (const [name, spec] of Object.entries(packages)) {
    const pkgDir = join(dir, "packages", name);
    const version = (list: string[] = []) => Object.fromEntries(list.map((d) => [`@gbt/${d}`, "0.1.0"]));
    mkdirSync(join(pkgDir, "src"), { recursive: true });
    writeFileSync(
      join(pkgDir, "package.json"),
      JSON.stringify({
        name: `@gbt/${name}`,
        dependencies: version(spec.deps),
        devDependencies: version(spec.devDeps),
      }),
    );
    for (const [file, text] of Object.entries(spec.files ?? { "index.ts": "export {};\n" })) {
      mkdirSync(dirname(join(pkgDir, "src", file)), { recursive: true });
      writeFileSync(join(pkgDir, "src", file), text);
    }
  }
  return dir;
}

describe("check-deps (CI guard on the dependency direction)", () => {
  it("passes on this repository", () => {
    expect(checkDependencies(root)).toEqual([]);
  });

  it("passes a scratch repository whose edges point the documented way", () => {
    const dir = monorepo({
      protocol: {},
      store: { deps: ["protocol"], files: { "index.ts": 'import { x } from "@gbt/protocol";\n' } },
      agent: { deps: ["protocol", "store"], files: { "a.ts": 'export { y } from "@gbt/store";\n' } },
    });
    expect(checkDependencies(dir)).toEqual([]);
  });

  it("fails on a wrong-way edge, naming it", () => {
    const dir = monorepo({
      protocol: { deps: ["store"], files: { "index.ts": 'import { openDatabase } from "@gbt/store";\n' } },
      store: { deps: ["protocol"] },
    });
    const problems = checkDependencies(dir);
    expect(problems).toContainEqual(
      expect.stringMatching(/^@gbt\/protocol depends on @gbt\/store: a wrong-way edge/),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^a dependency cycle: /));
  });

  it("fails on an import its package.json does not declare, and on reaching into another package's files", () => {
    const dir = monorepo({
      protocol: {},
      store: {},
      agent: {
        deps: ["protocol"],
        files: {
          "a.ts": 'import { openDatabase } from "@gbt/store";\n',
          "b.ts": 'import { x } from "@gbt/protocol/src/errors.js";\n',
          "c.ts": 'import { y } from "../../store/src/index.js";\n',
          "d.ts": 'import { z } from "@gbt/agent";\n',
        },
      },
    });
    const problems = checkDependencies(dir);
    expect(problems).toContainEqual(
      expect.stringContaining("packages/agent/src/a.ts: imports @gbt/store, which"),
    );
    expect(problems).toContainEqual(
      expect.stringContaining("packages/agent/src/b.ts: imports @gbt/protocol/src/errors.js"),
    );
    expect(problems).toContainEqual(
      expect.stringContaining(
        "packages/agent/src/c.ts: imports ../../store/src/index.js, a file of @gbt/store",
      ),
    );
  });

  it("lets tests use a devDependency, but not one that closes a cycle", () => {
    const fine = monorepo({
      protocol: {},
      operator: { deps: ["protocol"], devDeps: ["node"], files: { "x.test.ts": 'import "@gbt/node";\n' } },
      node: { deps: ["protocol"] },
    });
    expect(checkDependencies(fine)).toEqual([]);
    const cyclic = monorepo({
      protocol: { devDeps: ["store"], files: { "x.test.ts": 'import "@gbt/store";\n' } },
      store: { deps: ["protocol"] },
    });
    expect(checkDependencies(cyclic)).toContainEqual(
      "@gbt/protocol's tests use @gbt/store, which depends on @gbt/protocol: a cycle through tests",
    );
  });
});
