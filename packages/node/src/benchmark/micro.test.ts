import { isGbtError } from "@gbt/protocol";
import { describe, expect, it } from "vitest";
import type { Backend, ChatStreamEvent } from "../backends/types.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { DEFAULT_SEED, runMicroBenchmark, summarizeMicroRuns } from "./micro.js";
import { requestMetrics } from "./stats.js";
import { calibrateSyntheticPrompt, syntheticMessages } from "./synthetic-prompt.js";

const messages = (index: number) => syntheticMessages(20, index);

describe("micro benchmark on a scripted backend (exactly known timings)", () => {
  it("measures TTFT ≈ prefill, TPOT ≈ token interval, decode ≈ 1000 / interval", async () => {
    const prefillMs = 40;
    const tokenMs = 10;
    const backend = createScriptedBackend({ prefillMs, tokenMs });
    const runs: string[] = [];
    const results = await runMicroBenchmark(backend, {
      model: "scripted",
      messages,
      genTokens: 11,
      repetitions: 5,
      warmup: 1,
      onRun: (run) => runs.push(`${run.phase} ${run.completed}/${run.total}`),
    });

    expect(runs).toEqual([
      "warmup 1/6",
      "measure 2/6",
      "measure 3/6",
      "measure 4/6",
      "measure 5/6",
      "measure 6/6",
    ]);
    expect(results.repetitions).toHaveLength(5);
    expect(results.tokenCounts).toBe("usage");
    for (const run of results.repetitions) {
      expect(run.completionTokens).toBe(11);
      expect(run.finishReason).toBe("length");
    }
    // Timers fire late, never early: the lower bounds are the scripted values; the upper ones only
    // say TTFT carries the prefill and TPOT the token interval (a busy CI machine fires timers late).
    const s = results.summary;
    expect(s.ttftMs.mean).toBeGreaterThanOrEqual(prefillMs - 1);
    expect(s.ttftMs.mean).toBeLessThan(prefillMs * 4);
    expect(s.tpotMs.mean).toBeGreaterThanOrEqual(tokenMs - 1);
    expect(s.tpotMs.mean).toBeLessThan(tokenMs * 4);
    expect(s.itlMs.count).toBe(5 * 10);
    expect(s.itlMs.p50).toBeGreaterThanOrEqual(tokenMs - 1);
    expect(results.decodeTokPerSec).toBeGreaterThan(1000 / (tokenMs * 4));
    expect(results.decodeTokPerSec).toBeLessThanOrEqual(1000 / (tokenMs - 1));
    // Arithmetic consistency: decode = (tokens − 1) / (e2e − TTFT), TPOT = its inverse, per run.
    for (const run of results.repetitions) {
      expect(run.decodeTokPerSec).toBeCloseTo(1000 / (run.tpotMs as number), 0);
      expect(run.tpotMs).toBeCloseTo(((run.e2eMs - (run.ttftMs as number)) / 10) as number, 2);
    }
    expect(s.decodeTokPerSec.sd).not.toBeNull();
    expect(results.decodeVariationPct).not.toBeNull();
    expect(s.harnessMsPerToken.count).toBe(5);
    expect(s.harnessMsPerToken.min).toBeGreaterThanOrEqual(0);
  });

  it("cross-checks against the backend's own timings: the scripted backend counts all 11 tokens over 10 intervals", async () => {
    const backend = createScriptedBackend({ prefillMs: 20, tokenMs: 10 });
    const results = await runMicroBenchmark(backend, {
      model: "scripted",
      messages,
      genTokens: 11,
      repetitions: 5,
      warmup: 0,
    });
    expect(results.crossCheck.source).toBe("scripted");
    // Client: 10 tokens / window; backend: 11 tokens / the same window → (10/11 − 1) = −9.09%.
    expect(results.crossCheck.decodeDiffPct).toBeGreaterThan(-9.09 - 1.5);
    expect(results.crossCheck.decodeDiffPct).toBeLessThan(-9.09 + 1.5);
    for (const run of results.repetitions) expect(run.backend?.decodeMs).toBeGreaterThan(0);
  });

  it("sends temperature 0, a fixed seed, maxTokens M, and a distinct prompt nonce per request", async () => {
    const backend = createScriptedBackend();
    await runMicroBenchmark(backend, {
      model: "scripted",
      messages,
      genTokens: 4,
      repetitions: 2,
      warmup: 1,
    });
    expect(backend.received).toHaveLength(3);
    for (const request of backend.received) {
      expect(request).toMatchObject({ temperature: 0, seed: DEFAULT_SEED, maxTokens: 4 });
    }
    const prompts = backend.received.map((r) => r.messages[0]?.content);
    expect(new Set(prompts).size).toBe(3);
    expect(prompts[0]?.startsWith("#0000 ")).toBe(true);
  });

  it("flags token counts as estimated when the backend reports no usage", async () => {
    const inner = createScriptedBackend({ tokenMs: 1 });
    const noUsage: Backend = {
      ...inner,
      async *chatStream(request) {
        for await (const event of inner.chatStream(request) as AsyncIterable<ChatStreamEvent>) {
          yield event.type === "done" ? { ...event, usage: { promptTokens: 0, completionTokens: 0 } } : event;
        }
      },
    };
    const results = await runMicroBenchmark(noUsage, {
      model: "scripted",
      messages,
      genTokens: 6,
      repetitions: 1,
      warmup: 0,
    });
    expect(results.tokenCounts).toBe("estimate");
    expect(results.repetitions[0]?.completionTokens).toBe(6);
  });

  it("stops with INTERRUPTED on abort", async () => {
    const backend = createScriptedBackend({ tokenMs: 20 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 60);
    const error = await runMicroBenchmark(backend, {
      model: "scripted",
      messages,
      genTokens: 50,
      repetitions: 5,
      warmup: 0,
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(isGbtError(error, "INTERRUPTED")).toBe(true);
    expect(backend.active()).toBe(0);
  });

  it("rejects fewer than 2 generated tokens and no repetitions, and passes backend errors through", async () => {
    const backend = createScriptedBackend();
    const base = { model: "scripted", messages, genTokens: 8, repetitions: 1, warmup: 0 };
    await expect(runMicroBenchmark(backend, { ...base, genTokens: 1 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(runMicroBenchmark(backend, { ...base, repetitions: 0 })).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(runMicroBenchmark(backend, { ...base, model: "nope" })).rejects.toMatchObject({
      code: "MODEL_NOT_FOUND",
    });
  });
});

describe("summarizeMicroRuns on synthetic observations", () => {
  it("computes mean, variation and the clock difference exactly", () => {
    const run = (tpot: number, backendDecodeMs: number) => ({
      metrics: requestMetrics({
        startMs: 0,
        chunkTimesMs: Array.from({ length: 11 }, (_, i) => 100 + i * tpot),
        endMs: 100 + 10 * tpot,
        promptTokens: 50,
        completionTokens: 11,
      }),
      finishReason: "length" as const,
      timings: {
        promptMs: 100,
        decodeMs: backendDecodeMs,
        promptTokens: 50,
        decodeTokens: 10,
        source: "test",
      },
      harnessMs: 1.1,
      tokenCounts: "usage" as const,
    });
    // Client decode rates 100, 125, 80 tok/s (mean 101.667); backend rates all 100 tok/s.
    const results = summarizeMicroRuns([run(10, 100), run(8, 100), run(12.5, 100)]);
    expect(results.decodeTokPerSec).toBeCloseTo(101.667, 3);
    expect(results.decodeVariationPct).toBeCloseTo(((125 - 80) / 101.6667) * 100, 2);
    expect(results.crossCheck.decodeDiffPct).toBeCloseTo(1.667, 3);
    expect(results.crossCheck.prefillDiffPct).toBe(0);
    expect(results.summary.harnessMsPerToken.mean).toBeCloseTo(0.1, 6);
  });
});

describe("synthetic prompt", () => {
  it("is deterministic and calibrated to the largest size not above the target", async () => {
    expect(syntheticMessages(30, 7)).toEqual(syntheticMessages(30, 7));
    const count = async (m: { content: string }[]) => m[0]?.content.length ?? 0;
    const prompt = await calibrateSyntheticPrompt(200, count);
    expect(prompt.calibration).toBe("backend");
    expect(prompt.promptTokens).toBeLessThanOrEqual(200);
    expect(prompt.promptTokens).toBeGreaterThan(185);
    expect(await count(syntheticMessages(prompt.words + 1))).toBeGreaterThan(200);
    const estimated = await calibrateSyntheticPrompt(64);
    expect(estimated.calibration).toBe("estimate");
  });

  it("refuses a target smaller than the chat template", async () => {
    await expect(calibrateSyntheticPrompt(3, async () => 10)).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
  });
});
