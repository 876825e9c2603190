/**
 * The chain this gbt home uses (`chain.json` in the config dir): the RPC URL and where the gbt
 * contracts live. `gbt chain dev` writes it; `gbt stake` and `gbt payout` read it, strictly.
 */
import { join } from "node:path";
import { GbtError } from "@gbt/protocol";
import { readJsonFile, resolvePaths, writeJsonFile } from "@gbt/store";
import { z } from "zod";
import { gbtDeploymentSchema } from "./deployment.js";

export const chainConfigSchema = z.strictObject({
  version: z.literal(1),
  rpcUrl: z
    .string()
    .max(512)
    .regex(/^https?:\/\/\S+$/, "must be an http:// or https:// URL"),
  deployment: gbtDeploymentSchema,
  /** The gateway that settles this node's earnings (serves its payout proofs). */
  gatewayUrl: z
    .string()
    .max(512)
    .regex(/^https?:\/\/\S+$/, "must be an http:// or https:// URL")
    .optional(),
});
export type ChainConfig = z.output<typeof chainConfigSchema>;
export type ChainConfigInput = z.input<typeof chainConfigSchema>;

export function chainConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(resolvePaths(env).configDir, "chain.json");
}

/** Reads and validates `chain.json`; NOT_SET_UP when there is none. */
export async function loadChainConfig(path: string = chainConfigPath()): Promise<ChainConfig> {
  const config = await readJsonFile(path, chainConfigSchema, {
    what: "The chain config",
    hint: "Run `gbt chain dev` again to rewrite it.",
  });
  if (config === undefined) {
    throw new GbtError("NOT_SET_UP", `No chain config at ${path}.`, {
      details: { path },
      hint: "Start a local chain with `gbt chain dev` (it writes this file), or set GBT_HOME.",
    });
  }
  return config;
}

export async function writeChainConfig(path: string, config: ChainConfigInput): Promise<void> {
  await writeJsonFile(path, chainConfigSchema.parse(config));
}
