import { describe, expect, it } from "vitest";
import { toChatHistory } from "./embedded-history.js";

describe("toChatHistory", () => {
  it("pairs tool results with their calls by id inside one model response, continued afterwards", () => {
    const history = toChatHistory([
      { role: "system", content: "sys" },
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        content: "Checking.",
        toolCalls: [
          { id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
          { id: "call_b", name: "get_time", arguments: "not json" },
        ],
      },
      { role: "tool", toolCallId: "call_b", content: "noon" },
      { role: "tool", toolCallId: "call_a", content: "sunny" },
    ]);
    expect(history).toEqual([
      { type: "system", text: "sys" },
      { type: "user", text: "weather?" },
      {
        type: "model",
        response: [
          "Checking.",
          {
            type: "functionCall",
            name: "get_weather",
            params: { city: "Paris" },
            result: "sunny",
            startsNewChunk: true,
          },
          { type: "functionCall", name: "get_time", params: "not json", result: "noon" },
        ],
      },
    ]);
  });

  it("continues the same response with the assistant's text after the results, and opens a new one after a user turn", () => {
    const history = toChatHistory([
      { role: "user", content: "q" },
      { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "f", arguments: "{}" }] },
      { role: "tool", toolCallId: "c1", content: "r" },
      { role: "assistant", content: "Done." },
      { role: "user", content: "again" },
    ]);
    expect(history.slice(1)).toEqual([
      {
        type: "model",
        response: [
          { type: "functionCall", name: "f", params: {}, result: "r", startsNewChunk: true },
          "Done.",
        ],
      },
      { type: "user", text: "again" },
      { type: "model", response: [] },
    ]);
  });

  it("keeps a result with no matching call as user text, and appends a system note", () => {
    const history = toChatHistory(
      [
        { role: "user", content: "q" },
        { role: "tool", toolCallId: "nope", name: "f", content: "r" },
      ],
      "Tools: f",
    );
    expect(history).toEqual([
      { type: "system", text: "Tools: f" },
      { type: "user", text: "q" },
      { type: "user", text: "Result of f: r" },
      { type: "model", response: [] },
    ]);
    expect(toChatHistory([{ role: "system", content: "s" }], "note")[0]).toEqual({
      type: "system",
      text: "s\n\nnote",
    });
  });
});
