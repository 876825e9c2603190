/**
 * Where gbt keeps things on disk. XDG base directories by default; `GBT_HOME` overrides both,
 * which is what every test and every second node on one machine uses.
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export interface GbtPaths {
  /** `$XDG_CONFIG_HOME/gbt` or `$GBT_HOME/config`: config and keys. */
  configDir: string;
  /** `$XDG_DATA_HOME/gbt` or `$GBT_HOME/data`: databases, models, logs. */
  dataDir: string;
  configFile: string;
  keysDir: string;
  nodeKeystore: string;
  nodeDatabase: string;
  modelsDir: string;
}

/** Resolves every gbt path from the environment. */
export function resolvePaths(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): GbtPaths {
  let configDir: string;
  let dataDir: string;
  if (env.GBT_HOME) {
    const base = resolve(env.GBT_HOME);
    configDir = join(base, "config");
    dataDir = join(base, "data");
  } else {
    configDir = join(env.XDG_CONFIG_HOME ? resolve(env.XDG_CONFIG_HOME) : join(home, ".config"), "gbt");
    dataDir = join(env.XDG_DATA_HOME ? resolve(env.XDG_DATA_HOME) : join(home, ".local", "share"), "gbt");
  }
  const keysDir = join(configDir, "keys");
  return {
    configDir,
    dataDir,
    configFile: join(configDir, "config.json"),
    keysDir,
    nodeKeystore: join(keysDir, "node.json"),
    nodeDatabase: join(dataDir, "node.db"),
    modelsDir: join(dataDir, "models"),
  };
}
