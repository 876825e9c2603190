/**
 * The confirmation before any transaction: `--yes` skips it; on a TTY the user answers y/N;
 * without a TTY nothing is sent and the error names `--yes`.
 */
import { GbtError } from "@gbt/protocol";
import { ask, isInteractive } from "./terminal-input.js";

export async function confirmTransaction(
  summary: string,
  options: { yes: boolean; interactive?: boolean; prompt?: (question: string) => Promise<string> },
): Promise<void> {
  if (options.yes) return;
  if (!(options.interactive ?? isInteractive())) {
    throw new GbtError("MISSING_INPUT", `Not sending without confirmation: ${summary}.`, {
      hint: "Pass --yes to send the transaction without a prompt (no TTY to ask on).",
    });
  }
  const answer = await (options.prompt ?? ((q) => ask(q, { defaultValue: "n" })))(`${summary}. Send? (y/N)`);
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new GbtError("INTERRUPTED", "Cancelled: nothing was sent.");
  }
}
