/**
 * Where the gateway keeps its state (`<data dir>/gateway` and `<config dir>/gateway.json`, both
 * overridable by flags), its admin token, and the gateway client of the admin commands.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type GatewayPaths, readGatewayAdminToken } from "@gbt/gateway";
import { resolvePaths } from "@gbt/node";
import { createGatewayClient, type GatewayClient, GbtError } from "@gbt/protocol";
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

/**
 * The gateway's admin token for the admin commands: a given token file; else
 * GBT_GATEWAY_ADMIN_TOKEN; else the token of the gateway in --data-dir, or of the local one
 * (`gbt gateway serve`, then `gbt up`).
 */
export async function gatewayAdminToken(
  flags: { "data-dir"?: string | undefined },
  tokenFile?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (tokenFile !== undefined) {
    const token = await readFile(tokenFile, "utf8").then(
      (text) => text.trim(),
      () => "",
    );
    if (token) return token;
    throw new GbtError("MISSING_INPUT", `No admin token in ${tokenFile}.`, {
      hint: "Pass --admin-token-file PATH or set GBT_GATEWAY_ADMIN_TOKEN.",
    });
  }
  const dirs = flags["data-dir"]
    ? [gatewayPaths(flags).dataDir]
    : [gatewayPaths(flags).dataDir, join(resolvePaths().dataDir, "up", "gateway")];
  return readGatewayAdminToken(dirs, env);
}

/** The client of the gateway at `url` for the admin commands (`gbt gateway nodes|evidence`): its errors name their flags. */
export function adminGatewayClient(url: string, adminToken: string): GatewayClient {
  return createGatewayClient({
    url,
    adminToken,
    hints: {
      unreachable: "Start one with `gbt gateway serve` (or `gbt up`), or pass --url.",
      adminToken: "Use the token of that gateway: GBT_GATEWAY_ADMIN_TOKEN, or --data-dir of its state.",
    },
  });
}
