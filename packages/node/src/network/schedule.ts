/**
 * Network mode's schedule: the wall-clock windows (in one IANA time zone) during which the node
 * offers capacity to pooled traffic. A window is `HH:MM-HH:MM`, start included, end excluded; one
 * whose end is before its start wraps midnight. Being open is a matter of the wall clock, so DST
 * is handled by asking Intl what the local time is: a window whose start the clock skips (spring
 * forward) opens when the clock lands past it, and a boundary the clock passes twice (fall back)
 * changes the state twice. `nextChange` finds the next instant the state flips, DST jumps included.
 */
import { GbtError } from "@gbt/protocol";

/** One window in minutes of the local day: [start, end), wrapping midnight when end ≤ start. */
export interface ScheduleWindow {
  readonly start: number;
  readonly end: number;
}

export interface Schedule {
  /** Open at every instant (`always`, `00:00-24:00`, or windows covering the day). */
  readonly always: boolean;
  readonly windows: readonly ScheduleWindow[];
  /** The schedule as written, normalised (`22:00-08:00,12:00-13:00`, or `always`). */
  readonly text: string;
}

const DAY_MINUTES = 1440;
const MINUTE_MS = 60_000;
const SYNTAX_HINT =
  "Write the schedule as HH:MM-HH:MM[,HH:MM-HH:MM…] in 24-hour time (e.g. 22:00-08:00, which wraps midnight), start and end different; `always` (or 00:00-24:00) means always.";

/** Parses a schedule; CONFIG_INVALID naming the bad part otherwise. */
export function parseSchedule(text: string): Schedule {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === "always") return { always: true, windows: [], text: "always" };
  if (trimmed === "") throw badSchedule(text, text, "it is empty");
  const windows: ScheduleWindow[] = [];
  for (const raw of trimmed.split(",")) {
    const part = raw.trim();
    const match = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(part);
    if (!match) throw badSchedule(text, part, "it is not HH:MM-HH:MM");
    const [, sh, sm, eh, em] = match.map(Number) as [number, number, number, number, number];
    if (sh > 23 || sm > 59) throw badSchedule(text, part, "its start is not a time of day (00:00–23:59)");
    if (eh > 24 || em > 59 || (eh === 24 && em !== 0)) {
      throw badSchedule(text, part, "its end is not a time of day (00:00–24:00)");
    }
    const start = sh * 60 + sm;
    const end = eh * 60 + em;
    if (start === end % DAY_MINUTES && !(start === 0 && end === DAY_MINUTES)) {
      throw badSchedule(text, part, "its start and end are the same");
    }
    windows.push({ start, end: end % DAY_MINUTES });
  }
  const always = coversWholeDay(windows);
  return {
    always,
    windows: always ? [] : windows,
    text: always ? "always" : windows.map((w) => `${clock(w.start)}-${clock(w.end)}`).join(","),
  };
}

/**
 * The time zone to use: `timeZone` when given (checked), else the machine's. CONFIG_INVALID for a
 * name Intl does not know.
 */
export function resolveTimeZone(timeZone?: string): string {
  if (timeZone === undefined) return new Intl.DateTimeFormat().resolvedOptions().timeZone;
  try {
    return formatterFor(timeZone).resolvedOptions().timeZone;
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new GbtError(
      "CONFIG_INVALID",
      `network.timezone: "${timeZone}" is not a time zone this machine knows.`,
      {
        details: { path: "network.timezone", timezone: timeZone },
        hint: "Use an IANA name such as Europe/Berlin, America/New_York or UTC (`timedatectl list-timezones` lists them), or remove the field to use the machine's.",
        cause: error,
      },
    );
  }
}

/** Whether the schedule is open at `at`, by the wall clock of `timeZone`. */
export function isOpen(schedule: Schedule, at: Date, timeZone: string): boolean {
  if (schedule.always) return true;
  const local = wallClock(at.getTime(), timeZone);
  return openAtMinute(schedule, local.hour * 60 + local.minute);
}

/**
 * The next instant after `at` at which `isOpen` changes, or null when it never does (always open,
 * or windows that leave no gap in the next eight days).
 */
export function nextChange(schedule: Schedule, at: Date, timeZone: string): Date | null {
  if (schedule.always || schedule.windows.length === 0) return null;
  const boundaries = [...new Set(schedule.windows.flatMap((w) => [w.start, w.end]))].sort((a, b) => a - b);
  const state = isOpen(schedule, at, timeZone);
  const horizon = at.getTime() + 8 * DAY_MINUTES * MINUTE_MS;
  let t = at.getTime();
  while (t < horizon) {
    const local = wallClock(t, timeZone);
    const wallMs = ((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.millisecond;
    const next = boundaries.find((b) => b * MINUTE_MS > wallMs) ?? (boundaries[0] as number) + DAY_MINUTES;
    let candidate = t + (next * MINUTE_MS - wallMs);
    // The candidate assumes the zone's offset stays; if it changes on the way, the clock jumps at
    // the transition, which may itself flip the state (a window the jump lands in or leaves).
    if (offsetAt(candidate, timeZone) !== local.offset) candidate = transitionIn(t, candidate, timeZone);
    if (isOpen(schedule, new Date(candidate), timeZone) !== state) return new Date(candidate);
    t = candidate;
  }
  return null;
}

/** `HH:MM` of `at` in `timeZone`, with the date (`YYYY-MM-DD HH:MM`) unless it is within a day of `from`. */
export function formatLocalTime(at: Date, timeZone: string, from: Date): string {
  const local = wallClock(at.getTime(), timeZone);
  const time = `${pad(local.hour)}:${pad(local.minute)}`;
  if (at.getTime() - from.getTime() < DAY_MINUTES * MINUTE_MS) return time;
  return `${local.year}-${pad(local.month)}-${pad(local.day)} ${time}`;
}

function openAtMinute(schedule: Schedule, minute: number): boolean {
  return schedule.windows.some((w) =>
    w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end,
  );
}

function coversWholeDay(windows: readonly ScheduleWindow[]): boolean {
  const covered = new Array<boolean>(DAY_MINUTES).fill(false);
  for (const w of windows) {
    const length = (w.end - w.start + DAY_MINUTES) % DAY_MINUTES || DAY_MINUTES;
    for (let i = 0; i < length; i++) covered[(w.start + i) % DAY_MINUTES] = true;
  }
  return covered.every(Boolean);
}

/** The first millisecond in (from, to] at which the zone's offset differs from its offset at `from`. */
function transitionIn(from: number, to: number, timeZone: string): number {
  const before = offsetAt(from, timeZone);
  let low = from;
  let high = to;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (offsetAt(middle, timeZone) === before) low = middle;
    else high = middle;
  }
  return high;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  /** Local minus UTC, in ms. */
  offset: number;
}

function wallClock(ms: number, timeZone: string): WallClock {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const millisecond = ((ms % 1000) + 1000) % 1000;
  const year = parts.year as number;
  const month = parts.month as number;
  const day = parts.day as number;
  const hour = parts.hour as number;
  const minute = parts.minute as number;
  const second = parts.second as number;
  const offset = Date.UTC(year, month - 1, day, hour, minute, second, millisecond) - ms;
  return { year, month, day, hour, minute, second, millisecond, offset };
}

function offsetAt(ms: number, timeZone: string): number {
  return wallClock(ms, timeZone).offset;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function badSchedule(text: string, part: string, why: string): GbtError {
  return new GbtError("CONFIG_INVALID", `network.schedule: "${part}" is not a valid window (${why}).`, {
    details: { path: "network.schedule", schedule: text, part },
    hint: SYNTAX_HINT,
  });
}

const pad = (n: number) => String(n).padStart(2, "0");
const clock = (minutes: number) => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
