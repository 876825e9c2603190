/**
 * The whole relay: a non-streamed 200 is read in full from the node, then answered to the consumer
 * in one write with its length. A node that breaks off before the end has delivered nothing, so
 * the attempt fails and another node may be tried. The node's receipt comes in a header, which
 * the consumer never sees.
 */
import type { IncomingMessage } from "node:http";
import { RECEIPT_HEADER } from "@gbt/protocol";
import type { Attempt } from "./attempt.js";

export function relayWhole(attempt: Attempt, up: IncomingMessage, gatewayMs: number): void {
  const { res } = attempt;
  const chunks: Buffer[] = [];
  up.on("data", (chunk: Buffer) => chunks.push(chunk));
  up.on("error", (error) => attempt.fail("failure", error.message));
  up.on("end", () => {
    if (attempt.done) return;
    if (!up.complete) {
      attempt.fail("failure", "connection to the node lost");
      return;
    }
    attempt.done = true;
    attempt.responded = true;
    res.off("close", attempt.onConsumerGone);
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": body.length,
      "x-request-id": attempt.requestId,
      "x-gbt-gateway-ms": gatewayMs.toFixed(3),
    });
    res.end(body);
    const receiptHeader = up.headers[RECEIPT_HEADER];
    const receipt =
      typeof receiptHeader === "string" ? Buffer.from(receiptHeader, "base64url").toString("utf8") : null;
    const completed = attempt.completed(attempt.sentAt, 0, 0, receipt, "complete");
    completed.wholeBody = body;
    attempt.lease.release("success");
    attempt.complete(completed);
  });
}
