import { render } from "ink-testing-library";
import { describe, expect, it } from "vitest";
import { StatusBar } from "./StatusBar.js";

const node = "0x1c57469600882AdB59114358086aef1692EC3624";

describe("StatusBar", () => {
  it("shows the node, its mode, the agent connection and the planning model on one line", () => {
    const { lastFrame } = render(
      <StatusBar
        node={node}
        mode="local"
        planner="offline"
        connection={{ state: "connected", nodeUrl: "http://x", allowlistVersion: 1 }}
      />,
    );
    expect(lastFrame()).toContain("node 0x1c57…3624 │ mode local │ agent ● v1 │ planner offline");
  });

  it("says when the agent cannot be reached and what is running", () => {
    const { lastFrame } = render(
      <StatusBar
        node={node}
        planner="openai m"
        busy="running service.restart…"
        connection={{ state: "unreachable", nodeUrl: "http://x" }}
      />,
    );
    expect(lastFrame()).toContain("agent ○ unreachable");
    expect(lastFrame()).toContain("mode ?");
    expect(lastFrame()).toContain("⋯ running service.restart…");
  });
});
