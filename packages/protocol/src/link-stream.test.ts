import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LINK_MAX_CONTROL_LINE_BYTES, linkControlReplySchema } from "./gateway-link.js";
import { readControlMessages } from "./link-stream.js";

function reader() {
  const stream = new PassThrough();
  const messages: unknown[] = [];
  const bad: string[] = [];
  readControlMessages(
    stream,
    linkControlReplySchema,
    (m) => messages.push(m),
    (r) => bad.push(r),
  );
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  return { stream, messages, bad, flush };
}

describe("readControlMessages", () => {
  it("reads messages split anywhere across chunks, in order, skipping blank lines", async () => {
    const r = reader();
    r.stream.write('{"id":1,"status":200,"bo');
    r.stream.write('dy":{"ok":true}}\n\n{"id":2,"status":404,"body":null}\n');
    await r.flush();
    expect(r.messages).toEqual([
      { id: 1, status: 200, body: { ok: true } },
      { id: 2, status: 404, body: null },
    ]);
    expect(r.bad).toEqual([]);
  });

  it("stops at the first line that is not JSON or not a message: one refusal, nothing after", async () => {
    const r = reader();
    r.stream.write('not json\n{"id":3,"status":200,"body":1}\n');
    await r.flush();
    expect(r.bad).toEqual(["a control line is not JSON"]);
    expect(r.messages).toEqual([]);
    const s = reader();
    s.stream.write('{"id":1,"status":200,"body":1,"extra":true}\n{"id":2,"status":200,"body":1}\n');
    await s.flush();
    expect(s.bad).toEqual(["a control message is malformed"]);
    expect(s.messages).toEqual([]);
  });

  it("refuses a line that never ends past the size limit", async () => {
    const r = reader();
    r.stream.write("x".repeat(LINK_MAX_CONTROL_LINE_BYTES + 1));
    await r.flush();
    expect(r.bad).toEqual(["a control line passed the size limit"]);
  });
});
