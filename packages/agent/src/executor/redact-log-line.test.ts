import { describe, expect, it } from "vitest";
import { redactLogLine } from "./redact-log-line.js";

describe("redactLogLine", () => {
  it.each([
    ['{"passphrase":"hunter2-hunter2"}', '{"passphrase":"[REDACTED]"}'],
    ['{"adminToken":"0123456789abcdef","n":1}', '{"adminToken":"[REDACTED]","n":1}'],
    ['{"api_key": "plain"}', '{"api_key": "[REDACTED]"}'],
    ['{"privateKey":"0xabc"}', '{"privateKey":"[REDACTED]"}'],
    ["GBT_OWNER_KEY=… password=swordfish other=1", "GBT_OWNER_KEY=… password=[REDACTED] other=1"],
    ["using key gbt_sk_abcdefghijklmnopqrstuvwx now", "using key [REDACTED] now"],
    ["header Authorization: Basic dXNlcjpwYXNz", "header Authorization: [REDACTED]"],
    ["openai sk-proj-ABCDEFGHIJKLMNOPQRST", "openai [REDACTED]"],
  ])("redacts %s", (line, expected) => {
    expect(redactLogLine(line).text).toBe(expected);
  });

  it("keeps what only looks similar: token counts, tokenizer names, digests", () => {
    const line = `{"completionTokens":128,"maxTokens":64,"tokenizer":"llama","digest":"sha256:${"ab".repeat(32)}"}`;
    expect(redactLogLine(line)).toEqual({ text: line, redactions: 0, truncated: false });
  });

  it("strips control characters (terminal escapes) but keeps tabs", () => {
    expect(redactLogLine("a\u001b[2Jb\tc\u0007").text).toBe("a[2Jb\tc");
  });

  it("clips long lines and says so", () => {
    const out = redactLogLine("y".repeat(3_000), 100);
    expect(out.truncated).toBe(true);
    expect(out.text).toBe(`${"y".repeat(100)}… [truncated]`);
  });
});
