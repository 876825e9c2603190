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
