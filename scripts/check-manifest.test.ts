import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const check = (args: string[]) =>
  new Promise<number>((resolve) => {
    execFile(process.execPath, [join(root, "scripts/check-manifest.mjs"), ...args], { cwd: root }, (error) =>
      resolve(error ? Number(error.code ?? 1) : 0),
    );
  });

describe("check-manifest (CI guard)", () => {
  it("passes on the committed manifest and fails on a stale one, leaving the committed file as it was", async () => {
    const committed = await readFile(join(root, "oclif.manifest.json"), "utf8");
    expect(await check([])).toBe(0);
    const stale = JSON.parse(committed);
    stale.commands.status.summary = "an outdated summary";
    const dir = await mkdtemp(join(tmpdir(), "gbt-manifest-"));
    await writeFile(join(dir, "stale.json"), JSON.stringify(stale));
    expect(await check([join(dir, "stale.json")])).toBe(1);
    expect(await readFile(join(root, "oclif.manifest.json"), "utf8")).toBe(committed);
  });
});
