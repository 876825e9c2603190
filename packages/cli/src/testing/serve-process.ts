/**
 * Starts a real `gbt serve` process (bin/run.js, no TTY) on a free loopback port and reads its
 * "listening" JSON line. Tests talk to it over HTTP like any client and stop it with a signal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { gbtBin } from "./run-cli.js";

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServeProcess(args: string[], env: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const started = await startGbtProcess(
    ["serve", "--port", "0", "--json", "--log-level", "warn", ...args],
    env,
  );
  return { ...started, url: String(started.first.url) };
}

export interface GbtProcess {
  /** The first JSON line the command printed (e.g. its "listening" or "up" event). */
  first: Record<string, unknown>;
  child: ChildProcess;
  stderr: () => string;
  /** JSON lines printed after the first one. */
  lines: () => Record<string, unknown>[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts a long-running gbt command with --json and waits for its first JSON line. `wrap` runs it
 * under another command (e.g. `ip netns exec NS`, for a node in its own network namespace).
 */
export async function startGbtProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 90_000,
  wrap: readonly string[] = [],
): Promise<GbtProcess> {
  const [command, ...prefix] = wrap.length > 0 ? wrap : [process.execPath];
  const argv = wrap.length > 0 ? [...prefix, process.execPath, gbtBin, ...args] : [gbtBin, ...args];
  const child = spawn(command as string, argv, {
    env: { ...process.env, CI: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const later: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffer = "";
    let seen = false;
    const timer = setTimeout(
      () => reject(new Error(`gbt ${args[0]} printed nothing in ${timeoutMs} ms:\n${stderr}`)),
      timeoutMs,
    );
    child.stdout?.on("data", (chunk) => {
      buffer += chunk;
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf("\n");
        if (seen) later.push(line);
        else {
          seen = true;
          clearTimeout(timer);
          resolve(line);
        }
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`gbt ${args[0]} exited with ${code} before printing:\n${stderr}`));
    });
  });
  return {
    first,
    child,
    stderr: () => stderr,
    lines: () => later,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
