import { afterEach, describe, expect, it } from "vitest";
import { type HeadlessEvent, runHeadless } from "./headless.js";
import { createOfflinePlanner } from "./planner/offline-planner.js";
import { type SessionFixture, sessionFixture } from "./testing/session-fixture.js";

let fixture: SessionFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

async function headless(prompt: string, approve: boolean) {
  fixture ??= await sessionFixture(createOfflinePlanner());
  const events: HeadlessEvent[] = [];
  const exitCode = await runHeadless({
    session: fixture.session,
    prompt,
    approve,
    emit: (e) => events.push(e),
  });
  // Every event survives a JSON round trip (it is printed as one JSON line).
  for (const event of events) expect(JSON.parse(JSON.stringify(event))).toEqual(event);
  return { exitCode, events, done: events.at(-1) };
}

describe("headless operator", () => {
  it("without --approve prints the plan, signs nothing, and says how to run it", async () => {
    const { exitCode, events, done } = await headless("restart the backend", false);
    expect(exitCode).toBe(0);
    expect(events.map((e) => e.type)).toEqual(["agent", "user", "plan", "done"]);
    expect(done).toMatchObject({
      type: "done",
      approved: false,
      proposals: 1,
      succeeded: 0,
      hint: expect.stringContaining("--approve"),
    });
    expect(fixture?.signerCalls()).toBe(0);
    expect(fixture?.agent.received).toHaveLength(0);
  });

  it("with --approve signs, submits and reports each result", async () => {
    const { exitCode, events, done } = await headless("drain then resume", true);
    expect(exitCode).toBe(0);
    expect(
      events.filter((e) => e.type === "result").map((e) => e.type === "result" && [e.jobType, e.state]),
    ).toEqual([
      ["node.drain", "succeeded"],
      ["node.resume", "succeeded"],
    ]);
    expect(done).toMatchObject({ approved: true, proposals: 2, succeeded: 2, failed: 0, exitCode: 0 });
    expect(fixture?.agent.actions).toEqual(["drain", "resume"]);
  });

  it("a request it cannot plan exits 6; a refused proposal is reported as dropped, not run", async () => {
    expect((await headless("format the disk", true)).exitCode).toBe(6);
    const refused = await headless("pull ../../etc/passwd", true);
    expect(refused.exitCode).toBe(6);
    expect(refused.events).toContainEqual(expect.objectContaining({ type: "dropped" }));
    expect(fixture?.agent.received).toHaveLength(0);
  });

  it("a job the agent rejects gives the exit code of its class", async () => {
    fixture = await sessionFixture(createOfflinePlanner(), {
      owners: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
    });
    const { exitCode, done } = await headless("status", true);
    expect(exitCode).toBe(4);
    expect(done).toMatchObject({ failed: 1 });
  });
});
