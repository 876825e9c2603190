/**
 * Headless mode (`gbt operator --prompt "…" --json`): one message, its plan and, with `approve`,
 * each proposal signed, submitted and followed; every event is one JSON line on stdout. Nothing is
 * signed without `approve`, and nothing is ever asked: the caller supplies the key up front.
 */
import { type ErrorCode, ExitCode, errorCodes } from "@gbt/protocol";
import type { OperatorEvent } from "./events.js";
import type { OperatorSession } from "./operator-session.js";

export interface RunHeadlessOptions {
  session: OperatorSession;
  prompt: string;
  /** Sign and submit every valid proposal (else they are only printed). */
  approve: boolean;
  /** Receives each event (the CLI writes it as one JSON line). */
  emit: (event: HeadlessEvent) => void;
}

/** The events of headless mode: the session's, then one `done`. */
export type HeadlessEvent =
  | OperatorEvent
  | {
      type: "done";
      approved: boolean;
      proposals: number;
      dropped: number;
      succeeded: number;
      failed: number;
      exitCode: number;
      hint?: string;
    };

/** The process exit code of an error code (1 for a code this version does not know). */
export function exitCodeOf(code: string | undefined): number {
  if (code === undefined || !Object.hasOwn(errorCodes, code)) return ExitCode.bug;
  return ExitCode[errorCodes[code as ErrorCode]];
}

/** Runs one headless exchange; resolves with the exit code. */
export async function runHeadless(options: RunHeadlessOptions): Promise<number> {
  const { session, emit } = options;
  let dropped = 0;
  let explained = false;
  let firstError: string | undefined;
  const unsubscribe = session.subscribe((event) => {
    if (event.type === "thinking") return;
    if (event.type === "dropped") dropped += 1;
    if (event.type === "explanation") explained = true;
    if (event.type === "error") firstError ??= event.error.code;
    emit(event);
  });
  let succeeded = 0;
  let failed = 0;
  let exitCode = 0;
  try {
    const connection = await session.connect();
    const proposals = await session.ask(options.prompt);
    if (options.approve) {
      if (connection.state !== "connected" && proposals.length > 0) exitCode = ExitCode.unreachable;
      for (const proposal of proposals) {
        const result = await session.approve(proposal.id);
        if (result?.state === "succeeded") succeeded += 1;
        else {
          failed += 1;
          if (exitCode === 0) exitCode = exitCodeOf(result?.code ?? firstError);
        }
      }
    }
    if (exitCode === 0 && firstError !== undefined) exitCode = exitCodeOf(firstError);
    // Nothing to approve and nothing explained: the request was not understood (or every proposal was refused).
    if (exitCode === 0 && proposals.length === 0 && !explained) exitCode = ExitCode.validation;
    emit({
      type: "done",
      approved: options.approve,
      proposals: proposals.length,
      dropped,
      succeeded,
      failed,
      exitCode,
      ...(!options.approve && proposals.length > 0
        ? { hint: "Nothing was signed. Run again with --approve to sign and submit these jobs." }
        : {}),
    });
    return exitCode;
  } finally {
    unsubscribe();
  }
}
