/**
 * Relays a node's SSE stream to the consumer as it arrives, with the least work per chunk: whole
 * events are forwarded in one write, a partial event waits for its end, the node's receipt line
 * (`: gbt-receipt …`) is cut out, and events end at blank-line terminators (JSON strings cannot
 * hold a raw newline, so a terminator is always an event boundary). Nothing is parsed as JSON.
 *
 * A node is not trusted to frame its stream honestly:
 * - a partial event is kept as a list of chunks (joined once, when its end arrives), so a stream
 *   without terminators costs linear time, not a re-copy per chunk; and it is bounded by
 *   `maxEventBytes`: past that, `push` answers null and the caller ends the stream;
 * - what is billed is `contentEvents`, the events whose delta carries non-empty text (for chat:
 *   content, tool-call arguments, reasoning, refusal; each route names its own keys and, for the
 *   Responses API, the event types that carry text: see `SseRules`): an empty event bills
 *   nothing, and since each billed event carries at least one byte of text, a stream never bills
 *   more tokens than the bytes of text it delivered;
 * - `data: [DONE]` ends the stream only as an event of its own (at an event's start), never as
 *   text inside another event's JSON.
 */
import { RECEIPT_SSE_PREFIX, SSE_DONE_EVENT, SSE_EVENT_END } from "@gbt/protocol";

const TERMINATOR = Buffer.from(SSE_EVENT_END);
const RECEIPT = Buffer.from(RECEIPT_SSE_PREFIX);
/** `data: [DONE]`, looked for inside the complete events of a chunk. */
const DONE = Buffer.from(SSE_DONE_EVENT.slice(0, -SSE_EVENT_END.length));
/** Which events of a route's stream carry delivered text. */
export interface SseRules {
  /** The keys whose non-empty string value is delivered text (compact JSON). */
  readonly textKeys: readonly Buffer[];
  /** When set, only events starting with one of these lines count (the Responses API's `event:` lines). */
  readonly eventPrefixes: readonly Buffer[] | null;
}

/**
 * Chat's rules: OpenAI's chunk layout, where content, reasoning, refusals and tool calls (the
 * chunk naming the function, then each fragment of its arguments) are text.
 */
export const CHAT_SSE_RULES: SseRules = {
  textKeys: ['"content":"', '"arguments":"', '"name":"', '"reasoning_content":"', '"refusal":"'].map((key) =>
    Buffer.from(key),
  ),
  eventPrefixes: null,
};
const QUOTE = 0x22;
const NEWLINE = 0x0a;

/** The longest single event a node may send (its bytes before the blank line). */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

export class SseRelay {
  /** Complete events forwarded (receipt line excluded). */
  events = 0;
  /** Events carrying non-empty delivered text: what a stream bills without a receipt, and at most. */
  contentEvents = 0;
  /** Whether `data: [DONE]` went through. */
  done = false;
  /** Where `data: [DONE]` starts in the bytes `push` returned when `done` turned true. */
  doneAt = -1;
  /** The receipt's JSON text, once seen. */
  receipt: string | null = null;
  readonly #maxEventBytes: number;
  readonly #rules: SseRules;
  /** The unfinished event's chunks, and their total size. */
  #carry: Buffer[] = [];
  #carried = 0;

  constructor(maxEventBytes = DEFAULT_MAX_EVENT_BYTES, rules: SseRules = CHAT_SSE_RULES) {
    this.#maxEventBytes = maxEventBytes;
    this.#rules = rules;
  }

  /**
   * Returns the bytes to forward for this chunk (possibly empty), or null when the unfinished
   * event has grown past `maxEventBytes` (the stream must end there).
   */
  push(chunk: Buffer): Buffer | null {
    // Where the last complete event ends, counted in (unfinished event + this chunk).
    let cut: number;
    const inChunk = chunk.lastIndexOf(TERMINATOR);
    if (inChunk >= 0) cut = this.#carried + inChunk + TERMINATOR.length;
    else if (this.#carried > 0 && chunk[0] === NEWLINE && this.#lastCarriedByte() === NEWLINE) {
      cut = this.#carried + 1; // the terminator spans the two
    } else {
      this.#carry.push(chunk);
      this.#carried += chunk.length;
      return this.#carried > this.#maxEventBytes ? null : EMPTY;
    }
    let buffer = chunk;
    if (this.#carried > 0) {
      this.#carry.push(chunk);
      buffer = Buffer.concat(this.#carry, this.#carried + chunk.length);
      this.#carry = [];
      this.#carried = 0;
    }
    if (cut < buffer.length) {
      const rest = buffer.subarray(cut);
      this.#carry.push(rest);
      this.#carried = rest.length;
      if (rest.length > this.#maxEventBytes) return null;
    }
    let complete = buffer.subarray(0, cut);
    const at = complete.indexOf(RECEIPT);
    if (at >= 0 && (at === 0 || complete[at - 1] === NEWLINE)) {
      const receiptEnd = complete.indexOf(TERMINATOR, at);
      this.receipt = complete.toString("utf8", at + RECEIPT.length, receiptEnd);
      complete = Buffer.concat([complete.subarray(0, at), complete.subarray(receiptEnd + TERMINATOR.length)]);
    }
    let from = 0;
    const rules = this.#rules;
    for (;;) {
      const next = complete.indexOf(TERMINATOR, from);
      if (next < 0) break;
      this.events += 1;
      if (carriesText(complete.subarray(from, next), rules)) this.contentEvents += 1;
      from = next + TERMINATOR.length;
    }
    if (!this.done && complete.length >= DONE.length) {
      const at = doneEventAt(complete);
      if (at >= 0) {
        this.done = true;
        this.doneAt = at;
      }
    }
    return complete;
  }

  #lastCarriedByte(): number | undefined {
    const last = this.#carry[this.#carry.length - 1];
    return last?.[last.length - 1];
  }

  /** Bytes of an unfinished event left when the stream ended. */
  get pending(): number {
    return this.#carried;
  }
}

/** Where a `data: [DONE]` event starts in whole events, or −1 (inside another event's text it does not count). */
function doneEventAt(complete: Buffer): number {
  let at = complete.indexOf(DONE);
  while (at >= 0) {
    if (at === 0 || (complete[at - 1] === NEWLINE && complete[at - 2] === NEWLINE)) return at;
    at = complete.indexOf(DONE, at + 1);
  }
  return -1;
}

/** Whether an event has a text key with a non-empty string value (and, when the rules say, a text event's type). */
function carriesText(event: Buffer, rules: SseRules): boolean {
  const prefixes = rules.eventPrefixes;
  if (prefixes !== null) {
    let typed = false;
    for (const prefix of prefixes) {
      if (event.length > prefix.length && event.subarray(0, prefix.length).equals(prefix)) {
        typed = true;
        break;
      }
    }
    if (!typed) return false;
  }
  for (const key of rules.textKeys) {
    let at = event.indexOf(key);
    while (at >= 0) {
      const after = at + key.length;
      if (after < event.length && event[after] !== QUOTE) return true;
      at = event.indexOf(key, after);
    }
  }
  return false;
}

const EMPTY = Buffer.alloc(0);
