// The README's main job: set up a node in ./.gbt-dev (never your real ~/.config/gbt) on the
// embedded defaults and serve it on 127.0.0.1:8787 until Ctrl-C. Passes extra args to `gbt serve`.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = { ...process.env, GBT_HOME: process.env.GBT_HOME ?? `${root}.gbt-dev` };
const gbt = (args) => spawnSync(process.execPath, [`${root}bin/run.js`, ...args], { env, stdio: "inherit" });

const setup = gbt(["setup", "--yes"]);
if (setup.status !== 0) process.exit(setup.status ?? 1);
process.stderr.write("\n");
// Ctrl-C reaches both processes (same process group); gbt serve drains and exits 0, and so do we.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});
const serve = gbt(["serve", ...process.argv.slice(2)]);
process.exit(serve.status ?? 0);
