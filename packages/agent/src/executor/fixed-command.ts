/**
 * The only way the agent starts a process: a fixed table of commands, each a known executable
 * looked up in fixed system directories (never $PATH), with a fixed argument array, a timeout, an
 * output limit, a scrubbed environment and the node's data dir as working directory. No shell is
 * involved at any point, and no job parameter ever becomes an executable or an argument: jobs can
 * only name an entry of this table, which is code.
 */
import { access, constants } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { GbtError } from "@gbt/protocol";
import { execa } from "execa";

export interface FixedCommand {
  /** The executable's file name, looked up in the search dirs only. */
  executable: string;
  args: readonly string[];
  timeoutMs: number;
  /** Largest accepted stdout, in bytes. */
  maxOutputBytes: number;
}

/** The commands the agent may run, by name. */
export const fixedCommands = {
  /** GPU inventory and load, for status.read on NVIDIA machines. */
  "gpu.query": {
    executable: "nvidia-smi",
    args: [
      "--query-gpu=name,memory.total,memory.used,utilization.gpu,temperature.gpu",
      "--format=csv,noheader,nounits",
    ],
    timeoutMs: 5_000,
    maxOutputBytes: 64 * 1024,
  },
} as const satisfies Record<string, FixedCommand>;

export type FixedCommandName = keyof typeof fixedCommands;

/** Where executables are looked up: system directories only, never $PATH or the data dir. */
export const DEFAULT_SEARCH_DIRS: readonly string[] = [
  "/usr/bin",
  "/usr/local/bin",
  "/bin",
  "/usr/sbin",
  "/sbin",
];

export interface RunFixedCommandOptions {
  /** The node's data dir: the working directory. */
  dataDir: string;
  searchDirs?: readonly string[];
  /** Overrides the table (tests). */
  commands?: Record<string, FixedCommand>;
  signal?: AbortSignal;
}

export interface FixedCommandResult {
  executable: string;
  stdout: string;
  durationMs: number;
}

/** The absolute path of `executable` in the search dirs, or null when it is not installed. */
export async function findExecutable(
  executable: string,
  searchDirs: readonly string[],
): Promise<string | null> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(executable)) {
    throw new GbtError("INTERNAL", `Refusing executable name ${JSON.stringify(executable)}.`);
  }
  for (const dir of searchDirs) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, executable);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this dir.
    }
  }
  return null;
}

/**
 * Runs a command of the table. Throws PREFLIGHT_FAILED when its executable is not installed,
 * BACKEND_UNREACHABLE when it runs too long or exits non-zero; the error carries a
 * clipped stderr, never the environment.
 */
export async function runFixedCommand(
  name: string,
  options: RunFixedCommandOptions,
): Promise<FixedCommandResult> {
  const table: Record<string, FixedCommand> = options.commands ?? fixedCommands;
  const command = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!command) throw new GbtError("INTERNAL", `No fixed command ${JSON.stringify(name)}.`);
  const searchDirs = options.searchDirs ?? DEFAULT_SEARCH_DIRS;
  const file = await findExecutable(command.executable, searchDirs);
  if (file === null) {
    throw new GbtError("PREFLIGHT_FAILED", `${command.executable} is not installed on this node.`, {
      details: { command: name, searchDirs },
    });
  }
  const started = performance.now();
  const result = await execa(file, [...command.args], {
    shell: false,
    cwd: resolve(options.dataDir),
    env: { PATH: searchDirs.join(":"), LANG: "C", LC_ALL: "C" },
    extendEnv: false,
    stdin: "ignore",
    timeout: command.timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: command.maxOutputBytes,
    reject: false,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  const durationMs = performance.now() - started;
  if (result.timedOut) {
    throw new GbtError(
      "BACKEND_UNREACHABLE",
      `${command.executable} ran over ${command.timeoutMs} ms and was stopped.`,
      {
        details: { command: name },
      },
    );
  }
  if (result.failed) {
    const stderr = String(result.stderr ?? "").slice(0, 500);
    throw new GbtError(
      "BACKEND_UNREACHABLE",
      `${command.executable} failed (exit ${result.exitCode ?? "none"}${result.isMaxBuffer ? ", output over its limit" : ""}).`,
      { details: { command: name, exitCode: result.exitCode ?? null, stderr } },
    );
  }
  return { executable: file, stdout: String(result.stdout), durationMs };
}

/**
 * A path under the data dir from a relative name, refusing anything that would leave it (`..`,
 * absolute paths, NUL). For commands that take a file: the path argument is built here, never
 * taken from a job as is.
 */
export function dataDirPath(dataDir: string, name: string): string {
  const root = resolve(dataDir);
  const path = resolve(root, name);
  const rel = relative(root, path);
  if (name.includes("\0") || isAbsolute(name) || rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new GbtError("POLICY_DENIED", `${JSON.stringify(name)} is not a path inside the data dir.`, {
      details: { name },
    });
  }
  return path;
}
