/**
 * Base class of every gbt command: `--json` on every command, and one place that turns errors
 * into output. With `--json`, stdout carries exactly one document, `{"error": {code, message}}`
 * on failure; without it, errors go to stderr with their next step. The exit code always follows
 * the error's class (see the README's exit-code table).
 */

import { ExitCode, GbtError, isGbtError } from "@gbt/protocol";
import { Command, Errors } from "@oclif/core";

export abstract class GbtCommand extends Command {
  static override enableJsonFlag = true;

  /** Writes a human line to stderr (progress, notes): stdout is for results only. */
  protected note(message: string): void {
    if (!this.jsonEnabled()) process.stderr.write(`${message}\n`);
  }

  /** Writes a result line to stdout unless `--json` is on (then the returned value is the result). */
  protected out(message: string): void {
    if (!this.jsonEnabled()) process.stdout.write(`${message}\n`);
  }

  protected override async catch(error: Error & { exitCode?: number }): Promise<void> {
    if (error instanceof Errors.ExitError) throw error;
    const gbt = toGbtError(error);
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify({ error: gbt.toJSON() })}\n`);
    } else {
      const lines = [`Error: ${gbt.message}`];
      if (gbt.hint) lines.push(`  → ${gbt.hint}`);
      if (gbt.code === "INTERNAL") {
        lines.push("  This is a bug in gbt. Run again with GBT_DEBUG=1 for the stack trace and report it.");
        if (process.env.GBT_DEBUG) lines.push(String((gbt.cause as Error | undefined)?.stack ?? ""));
      }
      process.stderr.write(`${lines.join("\n")}\n`);
    }
    process.exitCode = gbt.exitCode;
  }
}

/** Maps anything thrown to a GbtError: oclif parse errors are usage errors, unknown errors are bugs. */
export function toGbtError(error: unknown): GbtError {
  if (isGbtError(error)) return error;
  if (error instanceof Errors.CLIError) {
    const message = error.message.replace(/\n\s*See more help with --help$/, "");
    return new GbtError("USAGE", message, { hint: "See the command's --help.", cause: error });
  }
  const err = error as NodeJS.ErrnoException;
  if (err?.code === "EACCES" || err?.code === "EROFS" || err?.code === "EPERM") {
    return new GbtError("NOT_WRITABLE", `Permission denied: ${err.path ?? err.message}.`, {
      details: { path: err.path },
      hint: "Choose a writable directory (GBT_HOME) or fix its permissions.",
      cause: error,
    });
  }
  return new GbtError("INTERNAL", error instanceof Error ? error.message : String(error), { cause: error });
}

export { ExitCode };
