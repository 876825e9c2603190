/**
 * JSON files gbt keeps on disk (config.json, chain.json, gateway.json): read strictly against a
 * zod schema with one set of errors (unreadable, not JSON, invalid at a field, each with a next
 * step), and written atomically (temporary file in the same directory, then rename; 0600 file in
 * a 0700 directory), never half-written.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { GbtError } from "@gbt/protocol";
import type { z } from "zod";

export interface JsonFileOptions {
  /** What the file is, for messages: "The config", "The chain config". */
  what: string;
  /** What to do about a file that is not valid JSON or does not match the schema. */
  hint: string;
}

/** Reads and validates a JSON file; undefined when it does not exist. */
export async function readJsonFile<S extends z.ZodType>(
  path: string,
  schema: S,
  options: JsonFileOptions,
): Promise<z.output<S> | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new GbtError("CONFIG_UNREADABLE", `Cannot read ${lower(options.what)} ${path} (${code}).`, {
      details: { path },
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new GbtError(
      "CONFIG_INVALID",
      `${options.what} ${path} is not valid JSON: ${(cause as Error).message}.`,
      {
        details: { path },
        hint: options.hint,
      },
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || "(root)";
    throw new GbtError(
      "CONFIG_INVALID",
      `${options.what} ${path} is invalid at ${field}: ${issue?.message ?? "malformed"}.`,
      {
        details: {
          path,
          field,
          issues: parsed.error.issues
            .slice(0, 5)
            .map((i) => ({ field: i.path.join("."), message: i.message })),
        },
        hint: options.hint,
      },
    );
  }
  return parsed.data;
}

/** Writes `value` as pretty JSON atomically when it differs from the file; returns whether it wrote. */
export async function writeJsonFile(path: string, value: unknown): Promise<boolean> {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  try {
    if ((await readFile(path, "utf8")) === text) return false;
  } catch {
    // absent or unreadable: write it
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, path);
  } catch (cause) {
    await rm(temp, { force: true });
    throw cause;
  }
  return true;
}

function lower(what: string): string {
  return what.charAt(0).toLowerCase() + what.slice(1);
}
