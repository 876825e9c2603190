/** Where the gateway keeps its state: `<data dir>/gateway` and `<config dir>/gateway.json`, both overridable by flags. */
import { resolve } from "node:path";
import type { GatewayPaths } from "@gbt/gateway";
import { resolvePaths } from "@gbt/node";
import { Flags } from "@oclif/core";

export const gatewayPathFlags = {
  "data-dir": Flags.string({ description: "Gateway data dir (default: <gbt data dir>/gateway)." }),
  config: Flags.string({ description: "Gateway config file (default: <gbt config dir>/gateway.json)." }),
};

export function gatewayPaths(flags: {
  "data-dir"?: string | undefined;
  config?: string | undefined;
}): GatewayPaths {
  const paths = resolvePaths();
  return {
    dataDir: flags["data-dir"] ? resolve(flags["data-dir"]) : resolve(paths.dataDir, "gateway"),
    configFile: flags.config ? resolve(flags.config) : resolve(paths.configDir, "gateway.json"),
  };
}
