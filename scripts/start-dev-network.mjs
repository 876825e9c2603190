// The README's main job: `gbt up` (a gateway, 3 nodes on the embedded test model and, on Linux x64,
// a local chain; a key; one request through it) with its state in ./.gbt-dev (never your real
// ~/.config/gbt), until Ctrl-C. Extra args go to `gbt up`, e.g. `npm start -- --nodes 5`.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = { ...process.env, GBT_HOME: process.env.GBT_HOME ?? `${root}.gbt-dev` };
const up = spawn(process.execPath, [`${root}bin/run.js`, "up", ...process.argv.slice(2)], {
  env,
  stdio: "inherit",
});
// Ctrl-C reaches both processes (same process group): gbt up stops the network and exits 0, and so
// do we. A SIGTERM sent to this wrapper alone (a process manager, `kill`) is passed on.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => up.kill("SIGTERM"));
up.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
