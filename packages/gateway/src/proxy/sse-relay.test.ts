import { describe, expect, it } from "vitest";
import { proxyRoutes } from "./proxy-routes.js";
import { SseRelay } from "./sse-relay.js";

const relayOf = (route: keyof typeof proxyRoutes) => new SseRelay(1024 * 1024, proxyRoutes[route].sse);

/** Pushes the stream in pieces of `size` bytes (events split anywhere) and returns what was forwarded. */
function pushAll(relay: SseRelay, stream: string, size: number): string {
  const bytes = Buffer.from(stream);
  let out = "";
  for (let at = 0; at < bytes.length && !relay.done; at += size) {
    const forwarded = relay.push(bytes.subarray(at, at + size));
    out += forwarded?.toString("utf8") ?? "";
  }
  return out;
}

const chatChunk = (delta: unknown) => `data: ${JSON.stringify({ choices: [{ index: 0, delta }] })}\n\n`;

describe("SseRelay per route", () => {
  it("bills chat tool-call chunks: the one naming the function and each argument fragment", () => {
    const stream = [
      chatChunk({ role: "assistant", content: "" }),
      chatChunk({
        tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }],
      }),
      chatChunk({ tool_calls: [{ index: 0, function: { arguments: '{"a"' } }] }),
      chatChunk({ tool_calls: [{ index: 0, function: { arguments: ":1}" } }] }),
      chatChunk({}),
      "data: [DONE]\n\n",
    ].join("");
    for (const size of [1, 7, 4096]) {
      const relay = relayOf("chat");
      pushAll(relay, stream, size);
      expect(relay.done).toBe(true);
      expect(relay.contentEvents).toBe(3);
    }
  });

  it("bills a completions stream's text chunks, not its framing", () => {
    const chunk = (text: string, finish: string | null) =>
      `data: ${JSON.stringify({ object: "text_completion", choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] })}\n\n`;
    const stream = `${chunk("", null)}${chunk("a", null)}${chunk("b", null)}${chunk("", "stop")}data: [DONE]\n\n`;
    const relay = relayOf("completions");
    pushAll(relay, stream, 5);
    expect(relay.contentEvents).toBe(2);
    expect(relay.done).toBe(true);
  });

  it("bills only the Responses API's delta events, and cuts the receipt", () => {
    const event = (type: string, fields: Record<string, unknown>) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
    const stream = [
      event("response.created", { response: { output: [] } }),
      event("response.output_text.delta", { delta: "Hel" }),
      event("response.output_text.delta", { delta: "" }),
      event("response.output_text.delta", { delta: "lo" }),
      event("response.output_text.done", { text: "Hello" }),
      event("response.function_call_arguments.delta", { delta: '{"x":1}' }),
      event("response.function_call_arguments.done", { arguments: '{"x":1}' }),
      // The whole response repeats the text and arguments: never billed again.
      event("response.completed", {
        response: { output: [{ type: "function_call", arguments: '{"x":1}' }] },
      }),
      ': gbt-receipt {"signed":true}\n\n',
      "data: [DONE]\n\n",
    ].join("");
    for (const size of [3, 4096]) {
      const relay = relayOf("responses");
      const out = pushAll(relay, stream, size);
      expect(relay.contentEvents).toBe(3);
      expect(relay.receipt).toBe('{"signed":true}');
      expect(out).not.toContain("gbt-receipt");
      expect(relay.done).toBe(true);
      // In one piece, the end's offset is in what this push returned.
      if (size === 4096) expect(relay.doneAt).toBe(out.indexOf("data: [DONE]"));
    }
  });

  it("does not take a [DONE] inside an event's text for the end of the stream", () => {
    const stream = `${chatChunk({ content: "data: [DONE]\n\n" })}${chatChunk({ content: "more" })}`;
    const relay = relayOf("chat");
    const out = relay.push(Buffer.from(stream));
    expect(relay.done).toBe(false);
    expect(relay.contentEvents).toBe(2);
    expect(out?.toString()).toBe(stream);
    relay.push(Buffer.from("data: [DONE]\n\n"));
    expect(relay.done).toBe(true);
    expect(relay.doneAt).toBe(0);
  });
});
