import { render } from "ink-testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { createOfflinePlanner } from "../planner/offline-planner.js";
import { type SessionFixture, sessionFixture } from "../testing/session-fixture.js";
import { tick, waitForFrame } from "../testing/wait-for-frame.js";
import { OperatorApp } from "./OperatorApp.js";

let fixture: SessionFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function app() {
  fixture = await sessionFixture(createOfflinePlanner());
  const ui = render(
    <OperatorApp session={fixture.session} nodeUrl={fixture.agent.url} mode="local" welcome={["welcome"]} />,
  );
  await waitForFrame(ui.lastFrame, (f) => f.includes("agent ● v1"));
  return ui;
}

async function ask(ui: Awaited<ReturnType<typeof app>>, text: string) {
  ui.stdin.write(text);
  await tick();
  ui.stdin.write("\r");
}

describe("OperatorApp on a real agent (offline planner)", () => {
  it("status: shows the plan, signs and runs it on 'a', then shows the result and its facts", async () => {
    const ui = await app();
    await ask(ui, "status");
    const planned = await waitForFrame(ui.lastFrame, (f) => f.includes("awaiting your approval"));
    expect(planned).toContain("▸ status.read [read] {}");
    expect(planned).toContain("why: You asked how the node is doing.");
    expect(fixture?.agent.received).toHaveLength(0);
    ui.stdin.write("a");
    const done = await waitForFrame(ui.lastFrame, (f) => f.includes("models: gbt-test-tiny"));
    expect(done).toContain("status.read job");
    expect(done).toContain("succeeded");
    expect(done).toMatch(/According to status\.read job .* \(result signed by the node\)/);
    expect(done).not.toContain("awaiting your approval");
    expect(fixture?.agent.received).toHaveLength(1);
  });

  it("restart the backend, then a benchmark, each approved", async () => {
    const ui = await app();
    await ask(ui, "restart the backend");
    await waitForFrame(ui.lastFrame, (f) => f.includes('service.restart [change] {"service":"backend"}'));
    ui.stdin.write("a");
    await waitForFrame(ui.lastFrame, (f) => f.includes("the backend restarted"));
    await ask(ui, "run a benchmark");
    await waitForFrame(ui.lastFrame, (f) => f.includes("benchmark.run [change]"));
    ui.stdin.write("a");
    await waitForFrame(ui.lastFrame, (f) => f.includes("decodeTokPerSec: 1234.5"));
    expect(fixture?.agent.actions).toEqual(["restart:backend", "benchmark:micro"]);
  });

  it("'r' rejects: nothing is signed; 'e' edits the params, checked again before they are kept", async () => {
    const ui = await app();
    await ask(ui, "drain");
    await waitForFrame(ui.lastFrame, (f) => f.includes("node.drain [change]"));
    ui.stdin.write("r");
    await waitForFrame(ui.lastFrame, (f) => f.includes("rejected node.drain; nothing was signed"));

    await ask(ui, "restart the backend");
    await waitForFrame(ui.lastFrame, (f) => f.includes("service.restart [change]"));
    ui.stdin.write("e");
    await waitForFrame(ui.lastFrame, (f) => f.includes("params of service.restart"));
    ui.stdin.write("\u0015");
    await tick();
    await ask(ui, '{"service":"gpu"}');
    await waitForFrame(ui.lastFrame, (f) => f.includes("edit not applied"));
    ui.stdin.write("e");
    await waitForFrame(ui.lastFrame, (f) => f.includes("params of service.restart"));
    ui.stdin.write("\u0015");
    await tick();
    await ask(ui, '{"service":"server"}');
    await waitForFrame(ui.lastFrame, (f) => f.includes('service.restart [change] {"service":"server"}'));
    ui.stdin.write("a");
    await waitForFrame(ui.lastFrame, (f) => f.includes("the server restarted"));
    expect(fixture?.agent.actions).toEqual(["restart:server"]);
  });

  it("a request it cannot plan is answered plainly, with nothing to approve", async () => {
    const ui = await app();
    await ask(ui, "mine some bitcoin");
    const frame = await waitForFrame(ui.lastFrame, (f) => f.includes("I can't do that"));
    expect(frame).not.toContain("awaiting your approval");
  });
});
