import { contentEventCount, RECEIPT_SSE_PREFIX, REQUEST_ID_HEADER, SSE_DONE_EVENT } from "@gbt/protocol";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createScriptedBackend } from "../testing/scripted-backend.js";
import { type NodeServer, startNodeServer } from "./node-server.js";

const servers: NodeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

/** The events of a stream as a relay counts them: blank-line terminated, the receipt comment cut out. */
function relayedEvents(body: string): string[] {
  return body.split("\n\n").filter((event) => event !== "" && !event.startsWith(RECEIPT_SSE_PREFIX));
}

describe("the node writes streams in protocol's SSE layout", () => {
  it.each([
    { includeUsage: false, pooled: false },
    { includeUsage: true, pooled: false },
    { includeUsage: true, pooled: true },
  ])("contentEventCount recovers the tokens from the events (%o)", async ({ includeUsage, pooled }) => {
    const server = await startNodeServer({
      backend: createScriptedBackend({ tokens: ["a", "b", "c", "d", "e"] }),
      logger: pino({ level: "silent" }),
      capacity: 1,
      ...(pooled
        ? {
            gatewayLink: {
              isLinkToken: (token: string) => token === "link",
              signReceipt: async () => ({ kind: "UsageReceipt" }) as never,
            },
          }
        : {}),
    });
    servers.push(server);
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(pooled ? { authorization: "Bearer link", [REQUEST_ID_HEADER]: "r1" } : {}),
      },
      body: JSON.stringify({
        model: "scripted",
        messages: [{ role: "user", content: "x" }],
        max_tokens: 5,
        stream: true,
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      }),
    });
    const body = await response.text();
    expect(body.endsWith(SSE_DONE_EVENT)).toBe(true);
    expect(body.includes(RECEIPT_SSE_PREFIX)).toBe(pooled);
    expect(contentEventCount(relayedEvents(body).length, { includeUsage })).toBe(5);
  });
});
