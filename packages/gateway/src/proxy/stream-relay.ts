/**
 * The streamed relay: a `stream: true` 200 is passed to the consumer event by event as it arrives
 * (see sse-relay.ts), and counted. Once the stream has started, a failure (connection lost, no
 * chunk for `stallTimeoutMs`) ends the consumer's stream with an error event and counts against
 * the node; a consumer who leaves is neutral. Either way the consumer pays only for the content
 * events delivered.
 */
import type { IncomingMessage } from "node:http";
import { contentEventCount } from "@gbt/protocol";
import type { Attempt } from "./attempt.js";
import { SseRelay } from "./sse-relay.js";

export function relayStream(
  attempt: Attempt,
  up: IncomingMessage,
  headersAt: number,
  gatewayMs: number,
): void {
  const { res, chat, lease } = attempt;
  const { routing, metrics } = attempt.context;
  attempt.responded = true;
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-request-id": attempt.requestId,
    "x-gbt-gateway-ms": gatewayMs.toFixed(3),
  });
  const relay = new SseRelay();
  let firstChunkAt = 0;
  let lastChunkAt = 0;
  const stall = setTimeout(() => {
    up.destroy(new Error(`no chunk for ${routing.stallTimeoutMs} ms`));
  }, routing.stallTimeoutMs);
  up.on("data", (chunk: Buffer) => {
    stall.refresh();
    const out = relay.push(chunk);
    if (out.length > 0) {
      lastChunkAt = performance.now();
      if (firstChunkAt === 0) firstChunkAt = lastChunkAt;
      res.write(out);
    }
  });
  const finish = (error: Error | null) => {
    if (attempt.done) return;
    attempt.done = true;
    clearTimeout(stall);
    res.off("close", attempt.onConsumerGone);
    const consumerGone = res.destroyed && !res.writableFinished;
    const complete = relay.done && error === null;
    // The layout the node writes (role, content…, finish, [usage], [DONE]) says which events are content.
    const contentEvents = contentEventCount(relay.events, { includeUsage: chat.includeUsage, complete });
    const generationMs = lastChunkAt > firstChunkAt ? lastChunkAt - firstChunkAt : 0;
    if (complete) {
      lease.release("success", { outputTokens: contentEvents, generationMs });
      res.end();
    } else if (consumerGone) {
      lease.release("neutral");
    } else {
      lease.release("failure");
      metrics.upstreamFailures.inc({ outcome: "mid_stream" });
      res.end(
        `data: ${JSON.stringify({
          error: {
            message: `The node serving this request failed mid-stream (${error?.message ?? "stream ended early"}); you are charged only for the tokens delivered.`,
            type: "server_error",
            param: null,
            code: "upstream_failed",
          },
        })}\n\n`,
      );
    }
    attempt.complete(
      attempt.completed(
        headersAt,
        contentEvents,
        generationMs,
        relay.receipt,
        complete ? "complete" : consumerGone ? "cancelled" : "failed",
      ),
    );
  };
  up.on("end", () => finish(relay.pending > 0 ? new Error("stream cut inside an event") : null));
  up.on("error", (error) => finish(error));
  up.on("aborted", () => finish(new Error("connection to the node lost")));
  up.on("close", () => finish(relay.done ? null : new Error("connection to the node lost")));
}
