/**
 * The schedule parser (each bad part named, with the syntax), isOpen/nextChange by the wall clock
 * of a zone, and windows across Berlin's DST changes of 2026 (29 March: 02:00 CET → 03:00 CEST at
 * 01:00 UTC; 25 October: 03:00 CEST → 02:00 CET at 01:00 UTC).
 */
import { GbtError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import { formatLocalTime, isOpen, nextChange, parseSchedule, resolveTimeZone } from "./schedule.js";

const at = (iso: string) => new Date(iso);
const BERLIN = "Europe/Berlin";

function refusal(text: string): GbtError {
  try {
    parseSchedule(text);
  } catch (error) {
    if (error instanceof GbtError) return error;
    throw error;
  }
  throw new Error(`"${text}" was accepted`);
}

describe("parseSchedule", () => {
  it.each([
    ["", '""'],
    ["22:00", '"22:00"'],
    ["25:00-08:00", '"25:00-08:00"'],
    ["22:60-08:00", '"22:60-08:00"'],
    ["22:00-24:30", '"22:00-24:30"'],
    ["08:00-08:00", '"08:00-08:00"'],
    ["24:00-08:00", '"24:00-08:00"'],
    ["9:00-17:00", '"9:00-17:00"'],
    ["22:00-08:00,lunch", '"lunch"'],
    ["22:00-08:00,,12:00-13:00", '""'],
    ["22:00 - 08:00", '"22:00 - 08:00"'],
  ])("refuses %j, naming the bad part and the syntax", (text, named) => {
    const error = refusal(text);
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain("network.schedule");
    expect(error.message).toContain(named);
    expect(error.hint).toContain("HH:MM-HH:MM[,HH:MM-HH:MM…]");
    expect(error.details).toMatchObject({ path: "network.schedule" });
  });

  it("reads windows, wrapping midnight, and `always` in its spellings", () => {
    expect(parseSchedule(" 22:00-08:00 , 12:00-13:30 ")).toEqual({
      always: false,
      windows: [
        { start: 22 * 60, end: 8 * 60 },
        { start: 12 * 60, end: 13 * 60 + 30 },
      ],
      text: "22:00-08:00,12:00-13:30",
    });
    expect(parseSchedule("18:00-24:00").windows).toEqual([{ start: 18 * 60, end: 0 }]);
    for (const always of ["always", "ALWAYS", "00:00-24:00", "08:00-20:00,20:00-08:00"]) {
      expect(parseSchedule(always)).toEqual({ always: true, windows: [], text: "always" });
    }
  });
});

describe("resolveTimeZone", () => {
  it("refuses a zone Intl does not know as a config error", () => {
    try {
      resolveTimeZone("Mars/Olympus_Mons");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(GbtError);
      expect((error as GbtError).code).toBe("CONFIG_INVALID");
      expect((error as GbtError).message).toContain('network.timezone: "Mars/Olympus_Mons"');
      expect((error as GbtError).hint).toContain("Europe/Berlin");
    }
  });

  it("takes a known zone and defaults to the machine's", () => {
    expect(resolveTimeZone("Europe/Berlin")).toBe("Europe/Berlin");
    expect(resolveTimeZone()).toBe(new Intl.DateTimeFormat().resolvedOptions().timeZone);
  });
});

describe("isOpen and nextChange", () => {
  it("opens at the start, closes at the end (excluded), and wraps midnight", () => {
    const night = parseSchedule("22:00-08:00");
    expect(isOpen(night, at("2026-06-01T21:59:59.999Z"), "UTC")).toBe(false);
    expect(isOpen(night, at("2026-06-01T22:00:00.000Z"), "UTC")).toBe(true);
    expect(isOpen(night, at("2026-06-02T03:00:00.000Z"), "UTC")).toBe(true);
    expect(isOpen(night, at("2026-06-02T07:59:59.999Z"), "UTC")).toBe(true);
    expect(isOpen(night, at("2026-06-02T08:00:00.000Z"), "UTC")).toBe(false);
    expect(nextChange(night, at("2026-06-01T12:00:00Z"), "UTC")).toEqual(at("2026-06-01T22:00:00Z"));
    expect(nextChange(night, at("2026-06-01T22:00:00Z"), "UTC")).toEqual(at("2026-06-02T08:00:00Z"));
    expect(nextChange(night, at("2026-06-02T07:59:59.999Z"), "UTC")).toEqual(at("2026-06-02T08:00:00Z"));
  });

  it("reads the wall clock of the zone, not UTC", () => {
    const evening = parseSchedule("18:00-20:00");
    // 16:30 UTC is 18:30 in Berlin in summer (CEST, +2).
    expect(isOpen(evening, at("2026-07-01T16:30:00Z"), BERLIN)).toBe(true);
    expect(isOpen(evening, at("2026-07-01T16:30:00Z"), "UTC")).toBe(false);
    expect(nextChange(evening, at("2026-07-01T16:30:00Z"), BERLIN)).toEqual(at("2026-07-01T18:00:00Z"));
  });

  it("skips a boundary that does not change the state (adjacent windows)", () => {
    const day = parseSchedule("08:00-12:00,12:00-14:00");
    expect(nextChange(day, at("2026-06-01T09:00:00Z"), "UTC")).toEqual(at("2026-06-01T14:00:00Z"));
  });

  it("never changes when always open", () => {
    expect(nextChange(parseSchedule("always"), at("2026-06-01T09:00:00Z"), BERLIN)).toBeNull();
    expect(isOpen(parseSchedule("00:00-24:00"), at("2026-03-29T01:30:00Z"), BERLIN)).toBe(true);
  });

  it("keeps a night window by the wall clock across spring forward (9 hours long that night)", () => {
    const night = parseSchedule("22:00-08:00");
    // 22:30 CET on 28 March; closes at 08:00 CEST on 29 March = 06:00 UTC.
    expect(isOpen(night, at("2026-03-28T21:30:00Z"), BERLIN)).toBe(true);
    expect(nextChange(night, at("2026-03-28T21:30:00Z"), BERLIN)).toEqual(at("2026-03-29T06:00:00Z"));
    expect(isOpen(night, at("2026-03-29T05:59:59.999Z"), BERLIN)).toBe(true);
    expect(isOpen(night, at("2026-03-29T06:00:00Z"), BERLIN)).toBe(false);
    // Reopens at 22:00 CEST = 20:00 UTC.
    expect(nextChange(night, at("2026-03-29T06:00:00Z"), BERLIN)).toEqual(at("2026-03-29T20:00:00Z"));
  });

  it("opens a window whose start the clock skips when the clock jumps into it", () => {
    const skipped = parseSchedule("02:30-05:00");
    // 01:00 CET → the clock goes from 01:59:59 CET to 03:00 CEST at 01:00 UTC.
    expect(isOpen(skipped, at("2026-03-29T00:59:59.999Z"), BERLIN)).toBe(false);
    expect(nextChange(skipped, at("2026-03-29T00:00:00Z"), BERLIN)).toEqual(at("2026-03-29T01:00:00Z"));
    expect(isOpen(skipped, at("2026-03-29T01:00:00Z"), BERLIN)).toBe(true);
    // Closes at 05:00 CEST = 03:00 UTC.
    expect(nextChange(skipped, at("2026-03-29T01:00:00Z"), BERLIN)).toEqual(at("2026-03-29T03:00:00Z"));
  });

  it("opens twice a window the clock passes twice in fall back", () => {
    const repeated = parseSchedule("01:00-02:30");
    // 01:30 CEST: open; closes 02:30 CEST = 00:30 UTC.
    expect(nextChange(repeated, at("2026-10-24T23:30:00Z"), BERLIN)).toEqual(at("2026-10-25T00:30:00Z"));
    expect(isOpen(repeated, at("2026-10-25T00:45:00Z"), BERLIN)).toBe(false);
    // 03:00 CEST becomes 02:00 CET at 01:00 UTC: open again, until 02:30 CET = 01:30 UTC.
    expect(nextChange(repeated, at("2026-10-25T00:30:00Z"), BERLIN)).toEqual(at("2026-10-25T01:00:00Z"));
    expect(isOpen(repeated, at("2026-10-25T01:00:00Z"), BERLIN)).toBe(true);
    expect(nextChange(repeated, at("2026-10-25T01:00:00Z"), BERLIN)).toEqual(at("2026-10-25T01:30:00Z"));
  });

  it("keeps a night window by the wall clock across fall back (11 hours long that night)", () => {
    const night = parseSchedule("22:00-08:00");
    // 22:30 CEST on 24 October; closes at 08:00 CET on 25 October = 07:00 UTC.
    expect(nextChange(night, at("2026-10-24T20:30:00Z"), BERLIN)).toEqual(at("2026-10-25T07:00:00Z"));
  });

  it("formats the next change as the zone's wall time", () => {
    const from = at("2026-03-28T21:30:00Z");
    expect(formatLocalTime(at("2026-03-29T06:00:00Z"), BERLIN, from)).toBe("08:00");
    expect(formatLocalTime(at("2026-03-31T06:00:00Z"), BERLIN, from)).toBe("2026-03-31 08:00");
  });
});
