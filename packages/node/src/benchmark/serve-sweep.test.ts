import { GbtError, isGbtError } from "@gbt/protocol";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Backend, ChatRequest, ChatStreamEvent } from "../backends/types.js";
import { collectChat } from "../backends/types.js";
import { type NodeServer, startNodeServer } from "../server/node-server.js";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import {
  concurrencyLevels,
  eligibleCapacity,
  levelMeetsFloor,
  runServeSweep,
  type ServeLevel,
  type ServeSweepOptions,
  sweepStop,
} from "./serve-sweep.js";
import { summarize } from "./stats.js";
import { syntheticMessages } from "./synthetic-prompt.js";

const logger = pino({ level: "silent" });
const servers: NodeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(100)));
});

async function serve(backend: Backend, capacity: number): Promise<NodeServer> {
  const server = await startNodeServer({ backend, logger, capacity });
  servers.push(server);
  return server;
}

const messages = (index: number) => syntheticMessages(10, index);

function sweep(url: string, extra: Partial<ServeSweepOptions> = {}) {
  return runServeSweep({
    url,
    model: "scripted",
    messages,
    genTokens: 11,
    minRequestsPerLevel: 4,
    roundsPerLevel: 2,
    ...extra,
  });
}

/** A backend whose compute is shared: each token takes `tokenMs × streams in flight` (throughput is flat). */
function sharedComputeBackend(tokenMs: number): Backend {
  let active = 0;
  async function* chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    active++;
    try {
      const limit = request.maxTokens ?? 8;
      for (let i = 0; i < limit; i++) {
        await new Promise((resolve) => setTimeout(resolve, tokenMs * active));
        yield { type: "delta", text: "x" };
      }
      yield { type: "done", finishReason: "length", usage: { promptTokens: 5, completionTokens: limit } };
    } finally {
      active--;
    }
  }
  return {
    kind: "embedded",
    location: "test",
    health: async () => ({ ok: true }),
    listModels: async () => [{ id: "scripted" }],
    chatStream,
    chat: (request) => collectChat(chatStream(request)),
    close: async () => {},
  };
}

function level(concurrency: number, minStream: number | null, extra: Partial<ServeLevel> = {}): ServeLevel {
  return {
    concurrency,
    requests: 4,
    succeeded: 4,
    errors: 0,
    errorCodes: {},
    wallMs: 100,
    systemTokPerSec: 100,
    requestsPerSec: 1,
    gainPct: null,
    ttftMs: summarize([10]),
    tpotMs: summarize([]),
    itlMs: summarize([]),
    e2eMs: summarize([]),
    prefillTokPerSec: summarize([]),
    decodeTokPerSec: summarize([]),
    backendDecodeTokPerSec: summarize([]),
    backendPrefillTokPerSec: summarize([]),
    minStreamDecodeTokPerSec: minStream,
    allStreamsAboveFloor: false,
    ...extra,
  };
}

describe("sweep plan and verdicts (pure)", () => {
  it("plans 1, 2, 4, … up to the limit, capped by the backend's capacity", () => {
    expect(concurrencyLevels(32)).toEqual([1, 2, 4, 8, 16, 32]);
    expect(concurrencyLevels(6)).toEqual([1, 2, 4, 6]);
    expect(concurrencyLevels(32, 4)).toEqual([1, 2, 4]);
    expect(concurrencyLevels(32, 3)).toEqual([1, 2, 3]);
    expect(concurrencyLevels(1)).toEqual([1]);
  });

  it("eligible capacity is the highest level at which every stream stays at or above the floor", () => {
    const levels = [level(1, 20), level(2, 12), level(4, 5), level(8, 4.99)];
    expect(eligibleCapacity(levels, 5)).toBe(4);
    expect(levelMeetsFloor(levels[2] as ServeLevel, 5)).toBe(true);
    expect(levelMeetsFloor(levels[3] as ServeLevel, 5)).toBe(false);
    expect(eligibleCapacity([level(1, 4), level(2, 3)], 5)).toBe(0);
    // A level with a failed request is not eligible, however fast its other streams were.
    expect(
      eligibleCapacity([level(1, 20), level(2, 20, { errors: 1, errorCodes: { stream_broken: 1 } })], 5),
    ).toBe(1);
    // A level whose stream rate is unknown (one-token outputs) proves nothing.
    expect(eligibleCapacity([level(1, null)], 5)).toBe(0);
  });

  it("stops at the knee, the TTFT target, capacity, errors, or the last level", () => {
    const rules = { minGainPct: 5, ttftP99TargetMs: 1000, lastConcurrency: 8, lastIsCapacity: false };
    expect(sweepStop([level(1, 10)], rules)).toBeNull();
    expect(sweepStop([level(1, 10), level(2, 10, { gainPct: 4.9 })], rules)?.reason).toBe("knee");
    expect(sweepStop([level(1, 10), level(2, 10, { gainPct: 5 })], rules)).toBeNull();
    expect(sweepStop([level(1, 10, { ttftMs: summarize([10, 1200]) })], rules)?.reason).toBe("ttft-target");
    expect(sweepStop([level(2, 10, { errors: 1, errorCodes: { over_capacity: 1 } })], rules)?.reason).toBe(
      "capacity",
    );
    expect(
      sweepStop([level(2, 10, { errors: 2, errorCodes: { over_capacity: 1, x: 1 } })], rules)?.reason,
    ).toBe("errors");
    expect(sweepStop([level(8, 10, { gainPct: 50 })], rules)?.reason).toBe("max-concurrency");
    expect(sweepStop([level(8, 10, { gainPct: 50 })], { ...rules, lastIsCapacity: true })?.reason).toBe(
      "capacity",
    );
  });
});

describe("serve sweep through the node server over a scripted backend", () => {
  it("measures TTFT ≈ prefill, TPOT ≈ token interval, and sweeps up to the backend's capacity", async () => {
    const backend = createScriptedBackend({ prefillMs: 20, tokenMs: 5 });
    const server = await serve(backend, 4);
    const progress: number[] = [];
    const results = await sweep(server.url, {
      capacity: 4,
      maxConcurrency: 16,
      onRequest: (p) => progress.push(p.concurrency),
    });

    expect(results.levels.map((l) => l.concurrency)).toEqual([1, 2, 4]);
    expect(results.stop.reason).toBe("capacity");
    expect(results.tokenCounts).toBe("usage");
    expect(results.errors).toBe(0);
    expect(new Set(progress)).toEqual(new Set([1, 2, 4]));
    for (const l of results.levels) {
      expect(l.requests).toBe(Math.max(4, 2 * l.concurrency));
      expect(l.succeeded).toBe(l.requests);
      // Timers fire late, never early, and a busy machine makes them later still: the bounds below
      // are loose on the high side, and what is checked is that TTFT carries the prefill and TPOT
      // the token interval, not the other way round.
      expect(l.ttftMs.p50).toBeGreaterThanOrEqual(19);
      expect(l.tpotMs.p50).toBeGreaterThanOrEqual(4);
      expect(l.ttftMs.p50).toBeGreaterThan((l.tpotMs.p50 ?? 0) + 10);
      expect(l.ttftMs.p50).toBeLessThan(20 * 10);
      expect(l.tpotMs.p50).toBeLessThan(5 * 10);
      // system tok/s is exactly the level's output tokens over its wall time.
      expect(l.systemTokPerSec).toBeCloseTo((l.succeeded * 11 * 1000) / l.wallMs, 1);
      expect(l.requestsPerSec).toBeCloseTo((l.succeeded * 1000) / l.wallMs, 2);
      expect(l.allStreamsAboveFloor).toBe(true);
    }
    expect(results.decodeTokPerSec).toBeGreaterThan(1000 / 50);
    expect(results.decodeTokPerSec).toBeLessThanOrEqual(1000 / 4);
    expect(results.eligibleCapacity).toBe(4);
    // The scripted server reports its own timings in the usage chunk: the cross-check has a source.
    expect(results.crossCheck.source).toBe("scripted");
    expect(results.crossCheck.decodeDiffPct).not.toBeNull();
    // Every request streamed with include_usage, temperature 0 and max_tokens M.
    for (const request of backend.received) expect(request).toMatchObject({ temperature: 0, maxTokens: 11 });
  });

  it("stops at the knee when throughput stops growing", async () => {
    const server = await serve(sharedComputeBackend(4), 32);
    const results = await sweep(server.url, { maxConcurrency: 32, genTokens: 8 });
    expect(results.stop.reason).toBe("knee");
    // Flat beyond 4: the knee shows at 8 (or at 16 when a loaded machine blurs one level), well before 32.
    expect(results.levels.length).toBeLessThanOrEqual(5);
    expect(results.levels.at(-1)?.gainPct).toBeLessThan(5);
  });

  it("stops when TTFT p99 is over its target", async () => {
    const server = await serve(createScriptedBackend({ prefillMs: 30, tokenMs: 1 }), 4);
    const results = await sweep(server.url, { maxConcurrency: 4, ttftP99TargetMs: 10 });
    expect(results.stop).toMatchObject({ reason: "ttft-target", concurrency: 1 });
    expect(results.levels).toHaveLength(1);
  });

  it("stops at capacity when the server answers 429, and keeps the levels below as eligible", async () => {
    const server = await serve(createScriptedBackend({ tokenMs: 5 }), 1);
    const results = await sweep(server.url, { maxConcurrency: 4 });
    expect(results.stop).toMatchObject({ reason: "capacity", concurrency: 2 });
    expect(results.levels[1]?.errorCodes.over_capacity).toBeGreaterThan(0);
    expect(results.eligibleCapacity).toBe(1);
  });

  it("says a stream below the 5 tok/s floor does not meet it", async () => {
    const server = await serve(createScriptedBackend({ tokenMs: 250 }), 1);
    const results = await sweep(server.url, {
      maxConcurrency: 1,
      genTokens: 3,
      minRequestsPerLevel: 1,
      roundsPerLevel: 1,
    });
    expect(results.levels[0]?.minStreamDecodeTokPerSec).toBeLessThan(5);
    expect(results.levels[0]?.allStreamsAboveFloor).toBe(false);
    expect(results.eligibleCapacity).toBe(0);
  });

  it("fails clearly before measuring: unreachable server, unknown model, bad concurrency", async () => {
    await expect(sweep("http://127.0.0.1:1")).rejects.toMatchObject({ code: "BACKEND_UNREACHABLE" });
    const server = await serve(createScriptedBackend(), 2);
    await expect(sweep(server.url, { model: "nope" })).rejects.toMatchObject({ code: "MODEL_NOT_FOUND" });
    await expect(sweep(server.url, { maxConcurrency: 0 })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    const tight = await serve(createScriptedBackend({ contextLength: 8 }), 2);
    await expect(sweep(tight.url)).rejects.toMatchObject({ code: "CONTEXT_LENGTH_EXCEEDED" });
  });

  it("stops with INTERRUPTED when aborted mid-sweep", async () => {
    const server = await serve(createScriptedBackend({ tokenMs: 20 }), 4);
    const controller = new AbortController();
    const pending = sweep(server.url, { signal: controller.signal, genTokens: 50 });
    setTimeout(() => controller.abort(new GbtError("INTERRUPTED", "test")), 150);
    const error = await pending.catch((e: unknown) => e);
    expect(isGbtError(error, "INTERRUPTED")).toBe(true);
  });
});
