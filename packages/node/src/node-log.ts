/**
 * The node's log file: `gbt serve` writes its pino JSON lines to stderr (for whoever runs it) and
 * to `<dataDir>/logs/node.log` (for logs.tail jobs and for admins after the fact). The file is
 * 0600, rotated once at start when it is over its size limit, and written with pino's redaction
 * of the fields that carry secrets; logs.tail redacts again on the way out.
 */
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import type { GbtPaths } from "@gbt/store";
import pino, { type Logger } from "pino";

/** Rotate `node.log` to `node.log.1` at start beyond this size. */
export const NODE_LOG_ROTATE_BYTES = 16 * 1024 * 1024;
/** logs.tail reads at most this much of the end of the file. */
export const NODE_LOG_TAIL_BYTES = 512 * 1024;

/** Fields pino blanks before a line is written anywhere. */
export const redactedLogPaths = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "authorization",
  "apiKey",
  "*.apiKey",
  "passphrase",
  "*.passphrase",
  "privateKey",
  "*.privateKey",
  "linkToken",
  "*.linkToken",
  "adminToken",
  "*.adminToken",
];

export function nodeLogFile(paths: Pick<GbtPaths, "dataDir">): string {
  return join(paths.dataDir, "logs", "node.log");
}

export interface NodeLoggerOptions {
  level: string;
  service: string;
  /** The log file (default none: stderr only). */
  file?: string;
  /** The file's level (default: info, or `level` when that is more verbose): a quiet terminal keeps a useful file. */
  fileLevel?: string;
  /** Also write to stderr (default true). */
  stderr?: boolean;
}

/** A pino logger on stderr and, when `file` is given, on the node's log file. */
export function createNodeLogger(options: NodeLoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  const values = pino.levels.values;
  const levelValue = (level: string) =>
    level === "silent" ? Number.POSITIVE_INFINITY : (values[level] ?? values.info ?? 30);
  const fileLevel =
    options.fileLevel ?? (levelValue(options.level) < levelValue("info") ? options.level : "info");
  if (options.stderr !== false && options.level !== "silent")
    streams.push({ level: options.level as pino.Level, stream: pino.destination(2) });
  if (options.file !== undefined) {
    prepareLogFile(options.file);
    streams.push({
      level: fileLevel as pino.Level,
      stream: pino.destination({ dest: options.file, append: true, mkdir: true, sync: true }),
    });
  }
  const lowest = streams.reduce(
    (min, entry) => (levelValue(entry.level as string) < levelValue(min) ? (entry.level as string) : min),
    "silent",
  );
  return pino(
    {
      level: lowest,
      base: { service: options.service },
      redact: { paths: redactedLogPaths, censor: "[REDACTED]" },
    },
    pino.multistream(streams),
  );
}

/** Creates the log dir (0700) and file (0600); rotates the file when it is over the limit. */
function prepareLogFile(file: string): void {
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o700 });
  try {
    if (statSync(file).size > NODE_LOG_ROTATE_BYTES) renameSync(file, `${file}.1`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  closeSync(openSync(file, "a", 0o600));
  chmodSync(file, 0o600);
}

/**
 * The last `lines` complete lines of `file`, oldest first, reading at most `maxBytes` from its end
 * (a partial first line in that window is dropped). A missing file has no lines.
 */
export function tailLogFile(file: string, lines: number, maxBytes = NODE_LOG_TAIL_BYTES): string[] {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString("utf8");
    const all = text.split("\n");
    if (length < size) all.shift();
    if (all.at(-1) === "") all.pop();
    return all.slice(-lines);
  } finally {
    closeSync(fd);
  }
}
