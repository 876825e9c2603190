/** Waits until an Ink test frame satisfies `predicate` (polls; fails with the last frame after `timeoutMs`). */
export async function waitForFrame(
  lastFrame: () => string | undefined,
  predicate: (frame: string) => boolean,
  timeoutMs = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = lastFrame() ?? "";
    if (predicate(frame)) return frame;
    if (Date.now() > deadline) throw new Error(`The frame never matched. Last frame:\n${frame}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Lets Ink process pending input and re-render. */
export const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
