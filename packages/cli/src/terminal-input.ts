/**
 * Reading secrets and answers from the user. Prompts happen only when stdin is a TTY; without
 * one, the caller gets undefined and names the missing flag in its error. Secrets are never
 * echoed, logged or put in error messages.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { GbtError } from "@gbt/protocol";

export function isInteractive(stdin: NodeJS.ReadStream = process.stdin): boolean {
  return Boolean(stdin.isTTY) && process.env.CI !== "true";
}

/** Asks one question on the TTY (stderr for the prompt, so stdout stays clean). */
export async function ask(
  question: string,
  options: { hidden?: boolean; defaultValue?: string } = {},
): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const suffix = options.defaultValue ? ` [${options.defaultValue}]` : "";
  if (options.hidden) {
    // Mute the echo of typed characters while keeping the prompt visible.
    const output = rl as unknown as { _writeToOutput: (text: string) => void; output: NodeJS.WritableStream };
    let prompted = false;
    output._writeToOutput = (text: string) => {
      if (!prompted) {
        process.stderr.write(text);
        prompted = true;
      }
    };
  }
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      rl.question(`${question}${suffix}: `, resolve);
      rl.once("SIGINT", () => reject(new GbtError("INTERRUPTED", "Interrupted.")));
    });
    if (options.hidden) process.stderr.write("\n");
    return answer.trim() === "" ? (options.defaultValue ?? "") : answer;
  } finally {
    rl.close();
  }
}

/** Reads a one-line secret from a file (trailing newline removed). */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new GbtError(
      "INVALID_INPUT",
      `Cannot read the ${what} file ${path} (${(cause as NodeJS.ErrnoException).code}).`,
      {
        details: { path },
        cause,
      },
    );
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret.length === 0) {
    throw new GbtError("INVALID_INPUT", `The ${what} file ${path} is empty.`, { details: { path } });
  }
  return secret;
}

export interface PassphraseSources {
  passphraseFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The passphrase from --passphrase-file, then GBT_PASSPHRASE; undefined when neither is given. */
export async function passphraseFromFlags({
  passphraseFile,
  env = process.env,
}: PassphraseSources): Promise<string | undefined> {
  if (passphraseFile) return readSecretFile(passphraseFile, "passphrase");
  if (env.GBT_PASSPHRASE !== undefined && env.GBT_PASSPHRASE !== "") return env.GBT_PASSPHRASE;
  return undefined;
}
