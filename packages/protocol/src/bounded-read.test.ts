import { describe, expect, it } from "vitest";
import { readBounded } from "./bounded-read.js";

/** A stream of `chunks`, recording how far it was read and whether it was cancelled. */
function stream(chunks: string[]) {
  const state = { pulled: 0, cancelled: false };
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks[state.pulled];
      state.pulled += 1;
      if (next === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(next));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { body, state };
}

describe("readBounded", () => {
  it("reads a body within the bound, whole", async () => {
    const { body } = stream(["ab", "cd"]);
    expect((await readBounded(body, 4)).toString()).toBe("abcd");
    expect((await readBounded(null, 4)).length).toBe(0);
  });

  it("refuses from the declared length without reading, and stops an endless body at the bound", async () => {
    const declared = stream(["x"]);
    expect(await readBounded(declared.body, 10, { declaredLength: "11" })).toBe("too large");
    expect([declared.state.pulled <= 1, declared.state.cancelled]).toEqual([true, true]);
    const endless = stream(Array.from({ length: 1000 }, () => "0123456789"));
    expect(await readBounded(endless.body, 25)).toBe("too large");
    expect(endless.state.pulled).toBeLessThan(10);
    expect(endless.state.cancelled).toBe(true);
    let opened = false;
    const lazy = () => {
      opened = true;
      return stream(["x"]).body;
    };
    expect(await readBounded(lazy, 10, { declaredLength: "11", onOverflow: "release" })).toBe("too large");
    expect(opened).toBe(false); // refused from the declared length without opening the stream
    const released = stream(Array.from({ length: 1000 }, () => "0123456789"));
    expect(await readBounded(released.body, 25, { onOverflow: "release" })).toBe("too large");
    expect(released.state.cancelled).toBe(false);
  });
});
