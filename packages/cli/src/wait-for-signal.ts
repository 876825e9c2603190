import { Flags } from "@oclif/core";
import pino, { type Logger } from "pino";

/** The flags every server command shares: how long to drain on a signal, and the log level. */
export const serverLifecycleFlags = {
  "shutdown-timeout": Flags.integer({
    description: "Seconds to let in-flight requests finish on SIGINT/SIGTERM.",
    default: 10,
    min: 0,
  }),
  "log-level": Flags.string({
    description: "Log level on stderr.",
    options: ["fatal", "error", "warn", "info", "debug", "silent"],
    default: "info",
  }),
};

/** pino JSON logs on stderr (stdout is for results). */
export function stderrLogger(level: string, service: string): Logger {
  return pino({ level, base: { service } }, pino.destination(2));
}

/**
 * Keeps a long-running command alive until SIGINT/SIGTERM, then runs its graceful stop; a second
 * signal exits at once with 130. Uses process.on (not once) and keeps the listeners until the stop
 * ends: signal-exit, pulled in by dependencies, re-raises a signal when it finds itself the last
 * listener, which would kill the process mid-drain.
 */
export async function runUntilSignal(stop: (signal: NodeJS.Signals) => Promise<void>): Promise<void> {
  let stopping = false;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    stop(signal).finally(() => done());
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await finished;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}
