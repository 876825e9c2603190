// Starting gbt from a bench: a one-shot command, and a `gbt serve` child process whose first
// JSON line gives its URL. Shared by the benches that measure through a real `gbt serve`.
import { spawn } from "node:child_process";
import { join } from "node:path";

/** Runs `gbt ARGS` from `checkout` (its bin/run.js) to its end; rejects on a non-zero exit. */
export function runGbt(checkout, env, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(checkout, "bin/run.js"), ...args], {
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`gbt ${args[0]} exited ${code}`))));
  });
}

/** Starts `gbt serve --port 0 --json --log-level warn ARGS`; resolves with its URL and a stop(). */
export async function startServe(checkout, env, args = []) {
  const child = spawn(
    process.execPath,
    [join(checkout, "bin/run.js"), "serve", "--port", "0", "--json", "--log-level", "warn", ...args],
    { env, stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (chunk) => {
      buffer += chunk;
      if (buffer.includes("\n")) resolve(JSON.parse(buffer.split("\n")[0]).url);
    });
    child.on("exit", (code) => reject(new Error(`gbt serve exited ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.on("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
}
