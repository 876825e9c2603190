/**
 * The benchmark's progress on stderr: a one-line bar redrawn in place on a terminal, and plain
 * lines (at most one a second, plus each phase change) when stderr is a pipe or a CI log. Never
 * writes to stdout and never reads input.
 */
import type { BenchmarkProgress } from "@gbt/node";

/** `[#########-----------]  45%  measure  repetition 3/5` */
export function formatProgress(progress: BenchmarkProgress, width = 24): string {
  const fraction = progress.total > 0 ? Math.min(1, Math.max(0, progress.completed / progress.total)) : 0;
  const filled = Math.round(fraction * width);
  const percent = `${Math.round(fraction * 100)}%`.padStart(4);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent}  ${progress.phase.padEnd(7)}  ${progress.label}`;
}

export interface ProgressReporter {
  update(progress: BenchmarkProgress): void;
  /** Ends the bar's line (call once, on success or failure). */
  stop(): void;
}

export interface ProgressReporterOptions {
  /** Redraw in place (a terminal); default: whether the stream is a TTY. */
  tty?: boolean;
  /** Milliseconds between plain lines when not a TTY (phase changes always print). */
  lineIntervalMs?: number;
  now?: () => number;
}

/** A progress reporter writing to `stream` (stderr). */
export function createProgressReporter(
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  options: ProgressReporterOptions = {},
): ProgressReporter {
  const tty = options.tty ?? Boolean(stream.isTTY);
  const interval = options.lineIntervalMs ?? 1_000;
  const now = options.now ?? Date.now;
  let lastPhase: string | undefined;
  let lastWrite = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(progress) {
      const line = formatProgress(progress);
      const changed = progress.phase !== lastPhase;
      lastPhase = progress.phase;
      if (tty) {
        if (!changed && now() - lastWrite < 50) return;
        const columns = stream.columns ?? 100;
        stream.write(`\r${line.slice(0, Math.max(20, columns - 1))}\u001b[K`);
        drawn = true;
        lastWrite = now();
        return;
      }
      const finished = progress.completed >= progress.total;
      if (!changed && !finished && now() - lastWrite < interval) return;
      stream.write(`${line}\n`);
      lastWrite = now();
    },
    stop() {
      if (tty && drawn) stream.write("\r\u001b[K");
      drawn = false;
    },
  };
}
