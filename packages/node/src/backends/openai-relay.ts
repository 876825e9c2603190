/**
 * The pass-through of an OpenAI-compatible backend (Backend.relay) on raw node:http with a
 * keep-alive agent: the consumer's body goes upstream as JSON, the answer comes back as the
 * server's objects (whole, or one per SSE event, parsed with eventsource-parser). The official
 * client would cost about 2 ms per request here (its fetch stack, request building and response
 * wrapping; bench/relay-overhead.mjs); this path adds a fraction of that. Failures are the
 * client's own error classes (APIError with the server's status and body, APIConnectionError,
 * APIConnectionTimeoutError), so the backend maps them to GbtErrors exactly as for its other calls.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createParser } from "eventsource-parser";
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type { ChatRelay, RelayedEvent } from "./types.js";

export interface RawRelayOptions {
  /** The server's base URL, ending in /v1 or wherever its OpenAI routes are. */
  baseURL: string;
  apiKey: string;
  /** Bound on waiting for the answer's headers, ms. */
  timeoutMs?: number;
  /** Turns whatever a call threw into the error to throw (the backend's GbtError mapping). */
  fail: (error: unknown, model: string | undefined) => Error;
  /** Opens an abort scope tied to the backend's lifetime (close() aborts it). */
  scope: (signal: AbortSignal) => { signal: AbortSignal; release: () => void };
}

/** The most a relayed whole answer may be (the node holds it in memory once). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export function createRawRelay(options: RawRelayOptions): ChatRelay {
  const base = new URL(options.baseURL.endsWith("/") ? options.baseURL : `${options.baseURL}/`);
  const https = base.protocol === "https:";
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: 256 })
    : new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const send = https ? httpsRequest : httpRequest;
  const authorization = `Bearer ${options.apiKey}`;

  /** POSTs `body` to `path`; resolves with the response once its headers are in (any status). */
  function post(path: string, body: Record<string, unknown>, signal: AbortSignal, stream: boolean) {
    const url = new URL(path, base);
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise<IncomingMessage>((resolve, reject) => {
      if (signal.aborted) return reject(new APIUserAbortError());
      const req = send(
        url,
        {
          method: "POST",
          agent,
          headers: {
            "content-type": "application/json",
            "content-length": payload.length,
            accept: stream ? "text/event-stream" : "application/json",
            authorization,
          },
        },
        (res) => {
          clearTimeout(timer);
          resolve(res);
        },
      );
      const onAbort = () => req.destroy(new APIUserAbortError());
      signal.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => signal.removeEventListener("abort", onAbort));
      const timer =
        options.timeoutMs !== undefined
          ? setTimeout(() => req.destroy(new APIConnectionTimeoutError()), options.timeoutMs)
          : undefined;
      req.on("error", (error) => {
        clearTimeout(timer);
        reject(
          error instanceof APIError || error instanceof APIUserAbortError
            ? error
            : new APIConnectionError({ cause: error }),
        );
      });
      req.end(payload);
    });
  }

  async function readAll(res: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > MAX_ANSWER_BYTES) {
        res.destroy();
        throw new APIConnectionError({
          message: `The server's answer is larger than ${MAX_ANSWER_BYTES} bytes.`,
        });
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /** The client's error for a non-2xx answer: its status, the server's error object, its headers. */
  async function refusal(res: IncomingMessage): Promise<APIError> {
    const text = await readAll(res).catch(() => "");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const error = (json as { error?: unknown } | undefined)?.error ?? json;
    const message =
      typeof (error as { message?: unknown } | undefined)?.message === "string"
        ? undefined
        : text.slice(0, 500) || undefined;
    return APIError.generate(res.statusCode ?? 500, error as object, message, new Headers(flatHeaders(res)));
  }

  async function whole(path: string, body: Record<string, unknown>, requestSignal: AbortSignal) {
    const { signal, release } = options.scope(requestSignal);
    try {
      const res = await post(path, body, signal, false);
      if ((res.statusCode ?? 500) >= 300) throw await refusal(res);
      const text = await readAll(res);
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new APIConnectionError({ message: "The server's answer is not JSON." });
      }
    } catch (error) {
      throw options.fail(error, typeof body.model === "string" ? body.model : undefined);
    } finally {
      release();
    }
  }

  async function* streamed(
    path: string,
    body: Record<string, unknown>,
    requestSignal: AbortSignal,
  ): AsyncGenerator<RelayedEvent> {
    const { signal, release } = options.scope(requestSignal);
    let res: IncomingMessage | undefined;
    const model = typeof body.model === "string" ? body.model : undefined;
    try {
      const streamOptions = (body.stream_options ?? {}) as Record<string, unknown>;
      res = await post(
        path,
        { ...body, stream: true, stream_options: { ...streamOptions, include_usage: true } },
        signal,
        true,
      );
      if ((res.statusCode ?? 500) >= 300) throw await refusal(res);
      const events: RelayedEvent[] = [];
      let done = false;
      let bad: Error | undefined;
      const parser = createParser({
        onEvent(event) {
          const data = event.data;
          if (data === "[DONE]") {
            done = true;
            return;
          }
          // A server that fails mid-stream says so in an error event (it has no choices).
          if (data.startsWith('{"error"') || (data.includes('"error"') && !data.includes('"choices"'))) {
            try {
              const value = JSON.parse(data) as Record<string, unknown>;
              if (value.error !== undefined && value.choices === undefined) {
                bad = APIError.generate(500, value.error as object, undefined, new Headers());
                return;
              }
            } catch {
              bad = new APIConnectionError({ message: "The server sent an event that is not JSON." });
              return;
            }
          }
          events.push(relayedEvent(data));
        },
      });
      res.setEncoding("utf8");
      for await (const chunk of res) {
        // After [DONE] the rest is read, not cut: the response ends and its socket is kept for the next request.
        if (done) continue;
        parser.feed(chunk as string);
        while (events.length > 0) yield events.shift() as RelayedEvent;
        if (bad) throw bad;
      }
      if (!done && !signal.aborted) {
        throw new APIConnectionError({ message: "The server ended the stream before [DONE]." });
      }
    } catch (error) {
      if (!signal.aborted) throw options.fail(error, model);
    } finally {
      // Also reached when the consumer stops reading: hang up so the server stops generating.
      if (res !== undefined && !res.complete) res.destroy();
      release();
    }
  }

  return {
    chat: (body, signal) => whole("chat/completions", { ...body, stream: false }, signal),
    chatStream: (body, signal) => streamed("chat/completions", body, signal),
    completions: (body, signal) => whole("completions", { ...body, stream: false }, signal),
    completionsStream: (body, signal) => streamed("completions", body, signal),
    // The body as the consumer sent it: encoding_format stays theirs (the client would ask for base64).
    embeddings: (body, signal) => whole("embeddings", body, signal),
  };
}

/** An event whose JSON is parsed once, and only if the node reads it. */
function relayedEvent(data: string): RelayedEvent {
  let value: Record<string, unknown> | undefined;
  return {
    data,
    json() {
      if (value === undefined) {
        try {
          value = JSON.parse(data) as Record<string, unknown>;
        } catch {
          throw new APIConnectionError({ message: "The server sent an event that is not JSON." });
        }
      }
      return value;
    },
  };
}

function flatHeaders(res: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}
