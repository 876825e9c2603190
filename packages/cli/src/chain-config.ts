/**
 * The chain this gbt home uses (`chain.json` in the config dir): the RPC URL and where the gbt
 * contracts live. `gbt chain dev` writes it; `gbt stake` and `gbt payout` read it, strictly.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gbtDeploymentSchema } from "@gbt/contracts";
import { resolvePaths } from "@gbt/node";
import { GbtError } from "@gbt/protocol";
import { z } from "zod";

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
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new GbtError("NOT_SET_UP", `No chain config at ${path}.`, {
        details: { path },
        hint: "Start a local chain with `gbt chain dev` (it writes this file), or set GBT_HOME.",
      });
    }
    throw new GbtError("CONFIG_UNREADABLE", `Cannot read ${path}.`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GbtError("CONFIG_INVALID", `${path} is not valid JSON.`, {
      details: { path },
      hint: "Run `gbt chain dev` again to rewrite it.",
    });
  }
  const parsed = chainConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GbtError(
      "CONFIG_INVALID",
      `${path}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}.`,
      {
        details: { path, issues: parsed.error.issues.slice(0, 5) },
        hint: "Run `gbt chain dev` again to rewrite it.",
      },
    );
  }
  return parsed.data;
}

/** Writes a JSON file atomically (temp file + rename), creating its directory. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
}

export async function writeChainConfig(path: string, config: ChainConfigInput): Promise<void> {
  await writeJsonAtomic(path, chainConfigSchema.parse(config));
}
