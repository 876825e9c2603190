/**
 * The layout of a node's streamed chat completion, the contract between the node that writes it
 * and the gateway that relays and bills it. A complete stream is, in order:
 *
 * 1. the role chunk: `delta: {"role":"assistant","content":""}`;
 * 2. the content chunks: one per piece of text the backend produced (a token, for every backend
 *    gbt ships), `delta: {"content":"…"}`;
 * 3. the finish chunk: `delta: {}` with the `finish_reason`;
 * 4. the usage chunk (`choices: []`, `usage`, the backend's `timings`), only when the request set
 *    `stream_options.include_usage`;
 * 5. for pooled requests, the signed receipt as an SSE comment (`RECEIPT_SSE_PREFIX` + JSON): not
 *    an event, the gateway cuts it out before counting or forwarding;
 * 6. `data: [DONE]`.
 *
 * A stream that fails after it started ends with one error event (`data: {"error":…}`) and no
 * `[DONE]`; a generation aborted by the client ends without a finish chunk.
 *
 * Every event is `data: <JSON>` ended by a blank line, and JSON strings cannot hold a raw
 * newline, so a relay counts events by their blank-line terminators without parsing them.
 */

/** What starts an event's line. */
export const SSE_DATA_PREFIX = "data: ";
/** What ends every event. */
export const SSE_EVENT_END = "\n\n";
/** The last event of a complete stream. */
export const SSE_DONE_EVENT = `${SSE_DATA_PREFIX}[DONE]${SSE_EVENT_END}`;

/** Events of a complete stream that carry no content: the role chunk, the finish chunk and `[DONE]`. */
export const SSE_FRAMING_EVENTS = 3;

export interface ContentEventCountOptions {
  /** Whether the request asked for the usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** Whether the stream ended with `[DONE]` (default true); a cut stream had only its role chunk before content. */
  complete?: boolean;
}

/**
 * How many content chunks a stream of `events` events held (the receipt comment not counted):
 * what the gateway bills as delivered completion tokens, bounded by the node's signed receipt.
 */
export function contentEventCount(events: number, options: ContentEventCountOptions): number {
  if (options.complete === false) return Math.max(0, events - 1);
  return Math.max(0, events - SSE_FRAMING_EVENTS - (options.includeUsage ? 1 : 0));
}
