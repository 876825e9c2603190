import { Text } from "ink";
import { render } from "ink-testing-library";
import { describe, expect, it } from "vitest";
import { tick, waitForFrame } from "../../testing/wait-for-frame.js";
import { useLineEditor } from "./use-line-editor.js";

function Harness({ submitted }: { submitted: string[] }) {
  const editor = useLineEditor({ active: true, onSubmit: (value) => submitted.push(value) });
  return <Text>[{editor.value}]</Text>;
}

describe("useLineEditor", () => {
  it("types, deletes, clears and submits a line; control characters never get in", async () => {
    const submitted: string[] = [];
    const { stdin, lastFrame } = render(<Harness submitted={submitted} />);
    await tick();
    stdin.write("restart");
    await waitForFrame(lastFrame, (f) => f.includes("[restart]"));
    stdin.write("\u007f");
    await waitForFrame(lastFrame, (f) => f.includes("[restar]"));
    stdin.write("\u0015");
    await waitForFrame(lastFrame, (f) => f.includes("[]"));
    stdin.write("st\u0007atus");
    await waitForFrame(lastFrame, (f) => f.includes("[status]"));
    stdin.write("\r");
    await waitForFrame(lastFrame, (f) => f.includes("[]"));
    expect(submitted).toEqual(["status"]);
  });

  it("submits text and Enter that arrive in one chunk", async () => {
    const submitted: string[] = [];
    const { stdin } = render(<Harness submitted={submitted} />);
    await tick();
    stdin.write("logs 20\r");
    await tick();
    expect(submitted).toEqual(["logs 20"]);
  });
});
