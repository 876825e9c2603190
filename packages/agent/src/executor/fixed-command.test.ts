import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { dataDirPath, type FixedCommand, findExecutable, runFixedCommand } from "./fixed-command.js";

let dir: string;
let bin: string;
let dataDir: string;

/** A stand-in executable (a script with a shebang) in the test's own search dir. */
function tool(name: string, body: string): void {
  const file = join(bin, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
}

const command = (
  executable: string,
  args: string[] = [],
  extra: Partial<FixedCommand> = {},
): FixedCommand => ({
  executable,
  args,
  timeoutMs: 5_000,
  maxOutputBytes: 64 * 1024,
  ...extra,
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-fixed-cmd-"));
  bin = join(dir, "bin");
  dataDir = join(dir, "data");
  mkdirSync(bin);
  mkdirSync(dataDir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("runFixedCommand", () => {
  it("runs with a scrubbed environment, in the data dir, arguments passed literally (no shell)", async () => {
    tool("probe", '/usr/bin/env > "$PWD/env.txt"; printf "%s\\n" "$@"');
    process.env.GBT_SECRET_FOR_TEST = "must-not-leak";
    try {
      const result = await runFixedCommand("probe", {
        dataDir,
        searchDirs: [bin],
        commands: { probe: command("probe", ["a;rm -rf /", "$(id)", "`id`", "x > y"]) },
      });
      expect(result.stdout.split("\n")).toEqual(["a;rm -rf /", "$(id)", "`id`", "x > y"]);
      const env = readFileSync(join(dataDir, "env.txt"), "utf8");
      expect(env).not.toContain("must-not-leak");
      expect(env).toContain(`PATH=${bin}`);
      expect(env).toContain("LANG=C");
    } finally {
      delete process.env.GBT_SECRET_FOR_TEST;
    }
  });

  it("only runs table entries, and looks executables up in the search dirs, never $PATH", async () => {
    await expect(runFixedCommand("sh", { dataDir, searchDirs: [bin] })).rejects.toMatchObject({
      code: "INTERNAL",
    });
    await expect(runFixedCommand("toString", { dataDir, searchDirs: [bin] })).rejects.toMatchObject({
      code: "INTERNAL",
    });
    // nvidia-smi is not in the test's search dir, whatever $PATH says.
    await expect(runFixedCommand("gpu.query", { dataDir, searchDirs: [bin] })).rejects.toMatchObject({
      code: "PREFLIGHT_FAILED",
    });
    await expect(findExecutable("../sh", [bin])).rejects.toMatchObject({ code: "INTERNAL" });
    expect(await findExecutable("sh", ["relative/bin", bin])).toBeNull();
  });

  it("kills a command over its timeout, and refuses output over its limit", async () => {
    tool("slow", "exec /bin/sleep 5");
    await expect(
      runFixedCommand("slow", {
        dataDir,
        searchDirs: [bin],
        commands: { slow: command("slow", [], { timeoutMs: 200 }) },
      }),
    ).rejects.toMatchObject({ code: "BACKEND_UNREACHABLE", message: expect.stringContaining("over 200 ms") });
    tool("chatty", "/usr/bin/head -c 100000 /dev/zero");
    await expect(
      runFixedCommand("chatty", {
        dataDir,
        searchDirs: [bin],
        commands: { chatty: command("chatty", [], { maxOutputBytes: 1_000 }) },
      }),
    ).rejects.toMatchObject({ message: expect.stringContaining("over its limit") });
  });

  it("reports a failing command with its exit code and clipped stderr", async () => {
    tool("broken", 'echo "no device" >&2; exit 3');
    await expect(
      runFixedCommand("broken", { dataDir, searchDirs: [bin], commands: { broken: command("broken") } }),
    ).rejects.toMatchObject({ code: "BACKEND_UNREACHABLE", details: { exitCode: 3, stderr: "no device" } });
  });
});

describe("dataDirPath", () => {
  it.each(["../etc/passwd", "/etc/passwd", "models/../../x", "a\0b", ".", ""])("refuses %j", (name) => {
    expect(() => dataDirPath(dataDir, name)).toThrow(expect.objectContaining({ code: "POLICY_DENIED" }));
  });
  it("resolves names inside the data dir", () => {
    expect(dataDirPath(dataDir, "models/x.gguf")).toBe(join(dataDir, "models", "x.gguf"));
  });
});
