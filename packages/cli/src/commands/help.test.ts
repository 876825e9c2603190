import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot, runCli } from "../testing/run-cli.js";

interface Manifest {
  commands: Record<string, { summary?: string; examples?: unknown[] }>;
}

describe("gbt --help", () => {
  it("lists the topics and the top-level commands", async () => {
    const result = await runCli(["--help"]);
    expect(result.exitCode).toBe(0);
    for (const word of ["TOPICS", "keys", "model", "node", "setup", "status", "serve"])
      expect(result.stdout).toContain(word);
  });

  it("gives every command a summary and examples, shown by its --help", async () => {
    const manifest = JSON.parse(await readFile(join(repoRoot, "oclif.manifest.json"), "utf8")) as Manifest;
    const ids = Object.keys(manifest.commands);
    expect(ids.length).toBeGreaterThanOrEqual(9);
    for (const id of ids) {
      const command = manifest.commands[id];
      expect(command?.summary, id).toBeTruthy();
      expect(command?.examples?.length ?? 0, id).toBeGreaterThan(0);
    }
    const help = await runCli([...(ids[0]?.split(":") ?? []), "--help"]);
    expect(help.stdout).toContain("EXAMPLES");
  });
});
