import { Text } from "ink";
import { render } from "ink-testing-library";
import { describe, expect, it } from "vitest";
import { tick, waitForFrame } from "../../testing/wait-for-frame.js";
import { usePlanReview } from "./use-plan-review.js";

function Harness({ log, active = true }: { log: string[]; active?: boolean }) {
  const selected = usePlanReview({
    active,
    count: 3,
    onApprove: (i) => log.push(`approve ${i}`),
    onReject: (i) => log.push(`reject ${i}`),
    onEdit: (i) => log.push(`edit ${i}`),
  });
  return <Text>selected {selected}</Text>;
}

describe("usePlanReview", () => {
  it("moves the selection with the arrows and acts on the selected proposal", async () => {
    const log: string[] = [];
    const { stdin, lastFrame } = render(<Harness log={log} />);
    await tick();
    stdin.write("\u001b[B");
    await waitForFrame(lastFrame, (f) => f.includes("selected 1"));
    stdin.write("a");
    await tick();
    stdin.write("\u001b[B");
    await waitForFrame(lastFrame, (f) => f.includes("selected 2"));
    stdin.write("\u001b[B");
    await tick();
    stdin.write("r");
    await tick();
    stdin.write("\u001b[A");
    await waitForFrame(lastFrame, (f) => f.includes("selected 1"));
    stdin.write("e");
    await tick();
    expect(log).toEqual(["approve 1", "reject 2", "edit 1"]);
  });

  it("ignores keys while inactive", async () => {
    const log: string[] = [];
    const { stdin } = render(<Harness log={log} active={false} />);
    await tick();
    stdin.write("a");
    await tick();
    expect(log).toEqual([]);
  });
});
