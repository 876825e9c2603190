import { describe, expect, it } from "vitest";
import { contentEventCount } from "./sse-layout.js";

describe("contentEventCount", () => {
  it("takes the role, finish and [DONE] events (and the usage chunk when asked for) off a complete stream", () => {
    expect(contentEventCount(8, { includeUsage: false })).toBe(5);
    expect(contentEventCount(9, { includeUsage: true })).toBe(5);
    expect(contentEventCount(3, { includeUsage: false })).toBe(0);
  });

  it("counts everything after the role chunk of a cut stream, and never goes below zero", () => {
    expect(contentEventCount(4, { includeUsage: true, complete: false })).toBe(3);
    expect(contentEventCount(0, { includeUsage: true, complete: false })).toBe(0);
    expect(contentEventCount(1, { includeUsage: true })).toBe(0);
  });
});
