import type { Address } from "viem";
import { describe, expect, it } from "vitest";
import type { OperatorEvent } from "./events.js";
import type { ProposedJob } from "./proposal.js";
import { initialViewState, reduceView } from "./view-state.js";

const node = "0x1c57469600882AdB59114358086aef1692EC3624" as Address;
const job: ProposedJob = {
  id: "p1",
  type: "service.restart",
  params: { service: "backend" },
  risk: "change",
  why: "w",
  description: "d",
  node,
};
const run = (events: OperatorEvent[]) => events.reduce(reduceView, initialViewState("http://127.0.0.1:8787"));

describe("view state", () => {
  it("keeps the plan pending until it is signed, shows what runs, then the result", () => {
    const planned = run([
      { type: "user", text: "restart" },
      { type: "thinking", planner: "offline" },
      { type: "plan", proposal: job },
    ]);
    expect(planned.pending).toEqual([job]);
    expect(planned.busy).toBeUndefined();
    const running = reduceView(planned, {
      type: "signed",
      proposalId: "p1",
      jobId: "3f0c6a8e-0000",
      jobType: "service.restart",
      issuer: node,
    });
    expect(running.pending).toEqual([]);
    expect(running.busy).toContain("running service.restart");
    const done = reduceView(running, {
      type: "result",
      proposalId: "p1",
      jobId: "3f0c6a8e-0000",
      jobType: "service.restart",
      state: "succeeded",
      summary: ["restarted"],
    });
    expect(done.busy).toBeUndefined();
    expect(done.items.at(-1)).toMatchObject({ kind: "result", tone: "ok", lines: ["restarted"] });
  });

  it("takes the node's mode from a status.read result", () => {
    const state = run([
      {
        type: "result",
        proposalId: "p1",
        jobId: "j",
        jobType: "status.read",
        state: "succeeded",
        summary: [],
        output: { mode: "managed" },
      },
    ]);
    expect(state.mode).toBe("managed");
  });

  it("an edit that fails keeps the proposal; a failed approval removes it", () => {
    const planned = run([{ type: "plan", proposal: job }]);
    expect(
      reduceView(planned, {
        type: "edit_rejected",
        proposalId: "p1",
        error: { code: "INVALID_PARAMS", message: "bad" },
      }).pending,
    ).toEqual([job]);
    expect(
      reduceView(planned, {
        type: "error",
        proposalId: "p1",
        error: { code: "NODE_UNREACHABLE", message: "down" },
      }).pending,
    ).toEqual([]);
  });
});
