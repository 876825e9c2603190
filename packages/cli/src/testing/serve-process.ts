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
  const child = spawn(
    process.execPath,
    [gbtBin, "serve", "--port", "0", "--json", "--log-level", "warn", ...args],
    {
      env: { ...process.env, CI: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk) => {
      buffer += chunk;
      const newline = buffer.indexOf("\n");
      if (newline >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as { event: string; url?: string };
        if (line.event === "listening" && line.url) resolve(line.url);
      }
    });
    exited.then((code) => reject(new Error(`gbt serve exited with ${code} before listening:\n${stderr}`)));
  });
  return {
    url,
    child,
    stderr: () => stderr,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
