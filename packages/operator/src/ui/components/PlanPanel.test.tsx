import { render } from "ink-testing-library";
import type { Address } from "viem";
import { describe, expect, it } from "vitest";
import type { ProposedJob } from "../../proposal.js";
import { PlanPanel } from "./PlanPanel.js";

const node = "0x1c57469600882AdB59114358086aef1692EC3624" as Address;
const jobs: ProposedJob[] = [
  {
    id: "p1",
    type: "node.drain",
    params: {},
    risk: "change",
    why: "Stop new requests first.",
    description: "",
    node,
  },
  {
    id: "p2",
    type: "service.restart",
    params: { service: "backend" },
    risk: "change",
    why: "Then restart.",
    description: "",
    node,
  },
];

describe("PlanPanel", () => {
  it("lists each job's type, risk and params, the why of the selected one, and the keys", () => {
    const frame = render(<PlanPanel proposals={jobs} selected={1} active />).lastFrame() ?? "";
    expect(frame).toContain("Plan: 2 jobs awaiting your approval (not signed)");
    expect(frame).toContain("  node.drain [change] {}");
    expect(frame).toContain('▸ service.restart [change] {"service":"backend"}');
    expect(frame).toContain("why: Then restart.");
    expect(frame).not.toContain("Stop new requests first.");
    expect(frame).toContain("a approve & sign · r reject · e edit params");
  });

  it("renders nothing without proposals", () => {
    expect(render(<PlanPanel proposals={[]} selected={0} active />).lastFrame()).toBe("");
  });
});
