import { describe, expect, it } from "vitest";
import {
  backendRates,
  benchmarkMetrics,
  diffPct,
  mean,
  percentile,
  requestMetrics,
  sampleSd,
  summarize,
  variationPct,
} from "./stats.js";

describe("percentile (linear interpolation between closest ranks)", () => {
  const values = [15, 20, 35, 40, 50];

  it("matches numpy.percentile's default on a fixed array", () => {
    // numpy.percentile([15, 20, 35, 40, 50], [0, 25, 50, 90, 95, 99, 100])
    expect(percentile(values, 0)).toBe(15);
    expect(percentile(values, 25)).toBe(20);
    expect(percentile(values, 50)).toBe(35);
    expect(percentile(values, 90)).toBeCloseTo(46, 10);
    expect(percentile(values, 95)).toBeCloseTo(48, 10);
    expect(percentile(values, 99)).toBeCloseTo(49.6, 10);
    expect(percentile(values, 100)).toBe(50);
  });

  it("does not depend on input order and leaves the input alone", () => {
    const shuffled = [40, 15, 50, 35, 20];
    expect(percentile(shuffled, 90)).toBeCloseTo(46, 10);
    expect(shuffled).toEqual([40, 15, 50, 35, 20]);
  });

  it("handles 1..100 exactly (p99 of 1..100 is 99.01)", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBeCloseTo(50.5, 10);
    expect(percentile(hundred, 90)).toBeCloseTo(90.1, 10);
    expect(percentile(hundred, 95)).toBeCloseTo(95.05, 10);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 10);
  });

  it("is null for no values, the value itself for one, and rejects p outside 0..100", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([7], 99)).toBe(7);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe("mean, sample sd, summary", () => {
  it("computes mean and the n − 1 standard deviation", () => {
    const values = [2, 4, 4, 4, 5, 5, 7, 9];
    expect(mean(values)).toBe(5);
    // Σ(x − 5)² = 32; 32 / 7
    expect(sampleSd(values)).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(sampleSd([3])).toBeNull();
    expect(mean([])).toBeNull();
  });

  it("summarizes finite values only, all null when there are none", () => {
    const summary = summarize([10, null, 20, undefined, 30, Number.NaN, 40]);
    expect(summary).toMatchObject({ count: 4, mean: 25, min: 10, max: 40, p50: 25 });
    expect(summary.sd).toBeCloseTo(Math.sqrt(500 / 3), 12);
    expect(summary.p99).toBeCloseTo(39.7, 10);
    expect(summarize([])).toEqual({
      count: 0,
      mean: null,
      sd: null,
      min: null,
      max: null,
      p50: null,
      p90: null,
      p95: null,
      p99: null,
    });
  });

  it("variation is (max − min) / mean in %, difference is relative to the reference", () => {
    expect(variationPct([98, 100, 102])).toBeCloseTo(4, 12);
    expect(diffPct(105, 100)).toBeCloseTo(5, 12);
    expect(diffPct(95, 100)).toBeCloseTo(-5, 12);
    expect(diffPct(1, 0)).toBeNull();
    expect(diffPct(null, 1)).toBeNull();
  });
});

describe("requestMetrics on exactly known timings", () => {
  it("TTFT, TPOT, ITL, e2e, prefill and decode rates", () => {
    // Sent at t=1000; first chunk at +200 ms; 10 more chunks every 25 ms; final event with the last chunk.
    const chunks = Array.from({ length: 11 }, (_, i) => 1200 + i * 25);
    const metrics = requestMetrics({
      startMs: 1000,
      chunkTimesMs: chunks,
      endMs: 1450,
      promptTokens: 100,
      completionTokens: 11,
    });
    expect(metrics.ttftMs).toBe(200);
    expect(metrics.e2eMs).toBe(450);
    // (450 − 200) / (11 − 1)
    expect(metrics.tpotMs).toBe(25);
    expect(metrics.itlMs).toEqual(Array(10).fill(25));
    expect(metrics.prefillTokPerSec).toBe(500);
    expect(metrics.decodeTokPerSec).toBe(40);
  });

  it("uses the token counts, not the chunk count (a chunk may carry several tokens)", () => {
    const metrics = requestMetrics({
      startMs: 0,
      chunkTimesMs: [100, 200],
      endMs: 200,
      promptTokens: 10,
      completionTokens: 5,
    });
    expect(metrics.tpotMs).toBe(25);
    expect(metrics.decodeTokPerSec).toBe(40);
    expect(metrics.itlMs).toEqual([100]);
  });

  it("leaves TPOT and decode undefined (null) for a one-token output, TTFT for no text", () => {
    const one = requestMetrics({
      startMs: 0,
      chunkTimesMs: [50],
      endMs: 60,
      promptTokens: 4,
      completionTokens: 1,
    });
    expect(one.tpotMs).toBeNull();
    expect(one.decodeTokPerSec).toBeNull();
    expect(one.ttftMs).toBe(50);
    const none = requestMetrics({
      startMs: 0,
      chunkTimesMs: [],
      endMs: 60,
      promptTokens: 4,
      completionTokens: 0,
    });
    expect(none.ttftMs).toBeNull();
    expect(none.prefillTokPerSec).toBeNull();
  });

  it("reads the backend's own rates from its timings", () => {
    expect(backendRates({ promptMs: 50, promptTokens: 100, decodeMs: 250, decodeTokens: 10 })).toEqual({
      prefillTokPerSec: 2000,
      decodeTokPerSec: 40,
    });
    expect(backendRates(undefined)).toEqual({ prefillTokPerSec: null, decodeTokPerSec: null });
  });
});

describe("metric definitions", () => {
  it("define every metric the issue names, each with a unit and a definition", () => {
    const names = benchmarkMetrics.map((m) => m.name);
    for (const name of [
      "ttftMs",
      "tpotMs",
      "itlMs",
      "e2eMs",
      "prefillTokPerSec",
      "decodeTokPerSec",
      "systemTokPerSec",
      "requestsPerSec",
      "errors",
    ]) {
      expect(names).toContain(name);
    }
    for (const metric of benchmarkMetrics) expect(metric.definition.length).toBeGreaterThan(20);
    expect(benchmarkMetrics.find((m) => m.name === "tpotMs")?.definition).toContain("(output tokens − 1)");
  });
});
