/**
 * Runs the real `gbt` CLI (bin/run.js over the compiled commands) as a child process with no
 * TTY, the way scripts and CI run it. Tests get stdout, stderr and the exit code.
 */
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
export const gbtBin = join(repoRoot, "bin", "run.js");

export interface CliResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs gbt with `args`; `input` is written to its stdin (else stdin is empty). */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [gbtBin, ...args],
      {
        env: { ...process.env, CI: "true", GBT_PASSPHRASE: "", GBT_NODE_KEY: "", ...env },
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ stdout, stderr, exitCode: code });
      },
    );
    child.stdin?.end(input);
  });
}

/** A fresh, empty GBT_HOME. */
export async function tempHome(prefix = "gbt-cli-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Parses stdout as exactly one JSON document (fails the test otherwise). */
export function onlyJson<T = Record<string, unknown>>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

/**
 * An owner for test nodes that join a gateway: an unclaimed node takes no pooled traffic, so a
 * test node is set up claimed (`gbt setup --owner TEST_OWNER`). No test signs with it.
 */
export const TEST_OWNER = "0x000000000000000000000000000000000000c1a1";
