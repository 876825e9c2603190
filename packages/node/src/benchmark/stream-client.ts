/**
 * The benchmark's client of an OpenAI-compatible chat endpoint: one streamed chat completion,
 * timed on the client's clock (when each chunk with text arrived, when the final usage event did),
 * its SSE parsed by eventsource-parser. It never throws except on abort: failures are outcomes
 * with a code, which the sweep's rules (serve-sweep.ts) act on.
 */

import { createParser } from "eventsource-parser";
import type { BackendTimings } from "../backends/types.js";
import {
  estimateTokensFromText,
  type RequestMetrics,
  requestMetrics,
  type TokenCountSource,
} from "./stats.js";

/** What one streamed request gave, or why it failed. */
export type StreamOutcome =
  | {
      ok: true;
      metrics: RequestMetrics;
      timings: BackendTimings | undefined;
      tokenCounts: TokenCountSource;
    }
  | { ok: false; code: string; status: number | null; message: string };

/** The `/v1` base of a server root or base URL. */
export function chatCompletionsUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  return `${trimmed.endsWith("/v1") ? trimmed : `${trimmed}/v1`}/chat/completions`;
}

function timingsFrom(value: unknown): BackendTimings | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const t = value as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  const timings: BackendTimings = {
    source: typeof t.source === "string" ? t.source : "llama.cpp:timings",
  };
  const promptMs = num(t.prompt_ms);
  const decodeMs = num(t.predicted_ms);
  const promptTokens = num(t.prompt_n);
  const decodeTokens = num(t.predicted_n);
  if (promptMs !== undefined) timings.promptMs = promptMs;
  if (decodeMs !== undefined) timings.decodeMs = decodeMs;
  if (promptTokens !== undefined) timings.promptTokens = promptTokens;
  if (decodeTokens !== undefined) timings.decodeTokens = decodeTokens;
  return timings;
}

/**
 * Sends one streaming chat completion and records, on the client's clock, when each chunk with
 * text arrived and when the final (usage) event did. Never throws except on abort.
 */
export async function streamChatCompletion(
  endpoint: string,
  body: Record<string, unknown>,
  options: { apiKey?: string; signal?: AbortSignal; promptText: string },
): Promise<StreamOutcome> {
  const startMs = performance.now();
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      code: "unreachable",
      status: null,
      message: cause?.message ?? (error as Error).message,
    };
  }
  if (response.status !== 200) {
    const text = await response.text().catch(() => "");
    let code = response.status === 429 ? "over_capacity" : `http_${response.status}`;
    let message = text.slice(0, 500);
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof parsed.error?.code === "string" && response.status !== 429) code = parsed.error.code;
      if (typeof parsed.error?.message === "string") message = parsed.error.message;
    } catch {
      // not JSON: keep the text
    }
    return { ok: false, code, status: response.status, message };
  }
  const chunkTimesMs: number[] = [];
  let chunks = 0;
  let usage: { promptTokens: number; completionTokens: number } | undefined;
  let timings: BackendTimings | undefined;
  let endMs: number | undefined;
  let done = false;
  let failure: Extract<StreamOutcome, { ok: false }> | undefined;
  // The receive time of the network chunk being parsed: every event in it arrived then.
  let now = 0;
  const parser = createParser({
    onEvent(event) {
      if (failure !== undefined || event.data === "") return;
      if (event.data === "[DONE]") {
        done = true;
        endMs ??= now;
        return;
      }
      let chunk: Record<string, unknown>;
      try {
        chunk = JSON.parse(event.data) as Record<string, unknown>;
      } catch {
        failure = { ok: false, code: "invalid_stream", status: 200, message: "A stream event was not JSON." };
        return;
      }
      const error = chunk.error as { code?: unknown; message?: unknown } | undefined;
      if (error) {
        failure = {
          ok: false,
          code: typeof error.code === "string" ? error.code : "stream_error",
          status: 200,
          message: typeof error.message === "string" ? error.message : "The stream reported an error.",
        };
        return;
      }
      const choices = chunk.choices as Array<{ delta?: { content?: unknown } }> | undefined;
      const content = choices?.[0]?.delta?.content;
      if (typeof content === "string" && content !== "") {
        chunkTimesMs.push(now);
        chunks++;
      }
      const u = chunk.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined | null;
      if (u && typeof u.prompt_tokens === "number" && typeof u.completion_tokens === "number") {
        usage = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens };
        endMs = now;
      }
      timings = timingsFrom(chunk.timings) ?? timings;
    },
  });
  const decoder = new TextDecoder();
  try {
    if (!response.body)
      return { ok: false, code: "empty_body", status: 200, message: "The response had no body." };
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
      now = performance.now();
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (failure !== undefined) return failure;
    }
  } catch (error) {
    if (options.signal?.aborted) throw error;
    return { ok: false, code: "stream_broken", status: 200, message: (error as Error).message };
  }
  if (!done && usage === undefined) {
    return {
      ok: false,
      code: "stream_incomplete",
      status: 200,
      message: "The stream ended before its final event.",
    };
  }
  const tokenCounts: TokenCountSource = usage ? "usage" : "estimate";
  const counts = usage ?? {
    promptTokens: estimateTokensFromText(options.promptText),
    completionTokens: chunks,
  };
  return {
    ok: true,
    metrics: requestMetrics({ startMs, chunkTimesMs, endMs: endMs ?? performance.now(), ...counts }),
    timings,
    tokenCounts,
  };
}
