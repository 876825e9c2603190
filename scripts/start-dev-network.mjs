// The README's main job: `gbt up` (a gateway and 3 nodes on the embedded test model, a key, one
// request through it) with its state in ./.gbt-dev (never your real ~/.config/gbt), until Ctrl-C.
// Extra args go to `gbt up`, e.g. `npm start -- --nodes 5`.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = { ...process.env, GBT_HOME: process.env.GBT_HOME ?? `${root}.gbt-dev` };
// Ctrl-C reaches both processes (same process group); gbt up stops the network and exits 0, and so do we.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});
const up = spawnSync(process.execPath, [`${root}bin/run.js`, "up", ...process.argv.slice(2)], {
  env,
  stdio: "inherit",
});
process.exit(up.status ?? 0);
