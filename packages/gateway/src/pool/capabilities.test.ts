import { type ModelCapabilitiesDetails, seededRandom } from "@gbt/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { capabilitiesOf, capabilityMask, requestNeeds } from "./capabilities.js";
import { InstancePool } from "./instance-pool.js";
import { NodeTransport } from "./node-transport.js";

const MODEL = "test-model";
const transport = new NodeTransport({ allowPrivate: true });
afterAll(() => transport.close());

const caps = (overrides: Partial<ModelCapabilitiesDetails> = {}): ModelCapabilitiesDetails => ({
  chat: true,
  tools: false,
  jsonSchema: false,
  embeddings: false,
  vision: false,
  logprobs: false,
  completions: false,
  ...overrides,
});

function setup(options: { panicMode?: boolean } = {}) {
  const clock = { t: 1_700_000_000_000 };
  const pool = new InstancePool(
    { random: seededRandom(3), panicMode: options.panicMode ?? false },
    () => clock.t,
  );
  const add = (id: string, capabilities?: ModelCapabilitiesDetails, capacity = 4) =>
    pool.register({
      id,
      nodeAddress: `0x${id}`,
      url: `http://127.0.0.1/${id}`,
      models: [MODEL],
      declaredCapacity: capacity,
      registeredAt: clock.t - 30 * 86_400_000,
      benchmarkTokPerSec: 50,
      link: {
        authorization: "Bearer t",
        transport,
        backend: null,
        models: [{ id: MODEL, ...(capabilities ? { capabilities } : {}) }],
      },
    });
  return { pool, add, clock };
}

describe("requestNeeds", () => {
  it("reads what changes the answer from each route's body", () => {
    const messages = [{ role: "user", content: "hi" }];
    const tools = [{ type: "function", function: { name: "f" } }];
    expect(requestNeeds("chat", { messages })).toEqual(["chat"]);
    expect(requestNeeds("chat", { messages, tools })).toEqual(["chat", "tools"]);
    expect(requestNeeds("chat", { messages, tools, tool_choice: "none" })).toEqual(["chat"]);
    expect(requestNeeds("chat", { messages, tools: [] })).toEqual(["chat"]);
    expect(requestNeeds("chat", { messages, response_format: { type: "json_object" } })).toEqual([
      "chat",
      "jsonSchema",
    ]);
    expect(requestNeeds("chat", { messages, response_format: { type: "text" } })).toEqual(["chat"]);
    expect(
      requestNeeds("chat", {
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }],
      }),
    ).toEqual(["chat", "vision"]);
    expect(requestNeeds("chat", { messages, logprobs: true })).toEqual(["chat", "logprobs"]);
    expect(requestNeeds("chat", { messages, logprobs: false })).toEqual(["chat"]);
    expect(requestNeeds("chat", { messages, top_logprobs: 2 })).toEqual(["chat", "logprobs"]);
    expect(requestNeeds("embeddings", { input: "x" })).toEqual(["embeddings"]);
    expect(requestNeeds("completions", { prompt: "x" })).toEqual(["completions"]);
    expect(requestNeeds("completions", { prompt: "x", logprobs: 2 })).toEqual(["completions", "logprobs"]);
    expect(
      requestNeeds("responses", {
        input: [{ role: "user", content: [{ type: "input_image", image_url: "x" }] }],
        tools,
        text: { format: { type: "json_schema", name: "a", schema: {} } },
      }),
    ).toEqual(["chat", "tools", "jsonSchema", "vision"]);
    expect(requestNeeds("responses", { input: "x" })).toEqual(["chat"]);
  });

  it("maps capabilities to masks and back; none given is chat only", () => {
    expect(capabilitiesOf(capabilityMask(undefined))).toEqual(["chat"]);
    expect(capabilitiesOf(capabilityMask(caps({ chat: false, embeddings: true, logprobs: true })))).toEqual([
      "embeddings",
      "logprobs",
    ]);
  });
});

describe("InstancePool.lease with needs", () => {
  it("skips instances whose model lacks a need, and counts them when none is left", () => {
    const { pool, add } = setup();
    add("plain", undefined, 100); // most spare: would win every pick
    add("tools", caps({ tools: true }));
    for (let i = 0; i < 4; i++) {
      const picked = pool.lease(MODEL, { needs: ["chat", "tools"] });
      expect(picked.lease?.instance.id).toBe("tools");
    }
    // Full now: the plain instance is never the fallback.
    const none = pool.lease(MODEL, { needs: ["chat", "tools"] });
    expect(none.lease).toBeNull();
    if (none.lease === null && none.counts !== null) {
      expect(none.counts.incapable).toBe(1);
      expect(none.counts.full).toBe(1);
    }
    expect(pool.lease(MODEL).lease?.instance.id).toBe("plain");
    const vision = pool.lease(MODEL, { needs: ["chat", "vision"] });
    expect(vision.lease === null && vision.counts?.incapable).toBe(2);
  });

  it("keeps needs in panic mode, and follows a re-registration's new capabilities", () => {
    const { pool, add } = setup({ panicMode: true });
    const plain = add("plain");
    // Park the plain instance: panic mode must still not give it a tools request.
    for (let i = 0; i < 5; i++) pool.lease(MODEL).lease?.release("failure");
    expect(plain.breaker.state).toBe("open");
    expect(pool.lease(MODEL, { needs: ["chat", "tools"] }).lease).toBeNull();
    add("plain", caps({ tools: true }));
    expect(pool.modelCapabilities(MODEL)?.mask).toBe(capabilityMask(caps({ tools: true })));
    const picked = pool.lease(MODEL, { needs: ["chat", "tools"] });
    expect(picked.lease?.instance.id).toBe("plain");
  });

  it("sums up a model's live capabilities: union of masks, the largest context", () => {
    const { pool, add, clock } = setup();
    add("a", caps({ tools: true, contextLength: 2048 }));
    add("b", caps({ jsonSchema: true, contextLength: 8192 }));
    const summary = pool.modelCapabilities(MODEL);
    expect(capabilitiesOf(summary?.mask ?? 0)).toEqual(["chat", "tools", "jsonSchema"]);
    expect(summary?.contextLength).toBe(8192);
    expect(pool.modelCapabilities("other")).toBeUndefined();
    clock.t += 10 * 60_000; // every instance stale
    expect(pool.modelCapabilities(MODEL)).toBeUndefined();
  });
});
