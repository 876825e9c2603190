/**
 * Relays a node's SSE stream to the consumer as it arrives, with the least work per chunk: whole
 * events are forwarded in one write, a partial event waits for its end, the node's receipt line
 * (`: gbt-receipt …`) is cut out, and events are counted by their blank-line terminators (JSON
 * strings cannot hold a raw newline, so a terminator is always an event boundary). Nothing is
 * parsed as JSON here.
 */
import { RECEIPT_SSE_PREFIX, SSE_DONE_EVENT, SSE_EVENT_END } from "@gbt/protocol";

const TERMINATOR = Buffer.from(SSE_EVENT_END);
const RECEIPT = Buffer.from(RECEIPT_SSE_PREFIX);
/** `data: [DONE]`, looked for inside the complete events of a chunk. */
const DONE = Buffer.from(SSE_DONE_EVENT.slice(0, -SSE_EVENT_END.length));

export class SseRelay {
  /** Complete events forwarded (receipt line excluded). */
  events = 0;
  /** Whether `data: [DONE]` went through. */
  done = false;
  /** The receipt's JSON text, once seen. */
  receipt: string | null = null;
  #carry: Buffer | null = null;

  /** Returns the bytes to forward for this chunk (possibly empty). */
  push(chunk: Buffer): Buffer {
    const buffer = this.#carry === null ? chunk : Buffer.concat([this.#carry, chunk]);
    const end = buffer.lastIndexOf(TERMINATOR);
    if (end < 0) {
      this.#carry = buffer;
      return EMPTY;
    }
    const cut = end + TERMINATOR.length;
    this.#carry = cut < buffer.length ? buffer.subarray(cut) : null;
    let complete = buffer.subarray(0, cut);
    const at = complete.indexOf(RECEIPT);
    if (at >= 0 && (at === 0 || complete[at - 1] === 0x0a)) {
      const receiptEnd = complete.indexOf(TERMINATOR, at);
      this.receipt = complete.toString("utf8", at + RECEIPT.length, receiptEnd);
      complete = Buffer.concat([complete.subarray(0, at), complete.subarray(receiptEnd + TERMINATOR.length)]);
    }
    let from = 0;
    for (;;) {
      const next = complete.indexOf(TERMINATOR, from);
      if (next < 0) break;
      this.events += 1;
      from = next + TERMINATOR.length;
    }
    if (!this.done && complete.length >= DONE.length && complete.includes(DONE)) this.done = true;
    return complete;
  }

  /** Bytes of an unfinished event left when the stream ended. */
  get pending(): number {
    return this.#carry?.length ?? 0;
  }
}

const EMPTY = Buffer.alloc(0);
