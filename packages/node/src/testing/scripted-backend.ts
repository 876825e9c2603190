/**
 * A backend whose every token arrives at a scripted time: for tests of the node server and of
 * benchmark arithmetic that need exactly known timings. It honours capacity, abort, maxTokens
 * and unknown models like a real backend, and counts tokens exactly (one per scripted piece).
 */
import { GbtError } from "@gbt/protocol";
import {
  type Backend,
  type ChatRequest,
  type ChatStreamEvent,
  collectChat,
  type FinishReason,
  type ModelInfo,
} from "../backends/types.js";

export interface ScriptedBackendOptions {
  models?: string[];
  /** Pieces of text generated, one token each (cycled up to maxTokens). */
  tokens?: string[];
  /** Delay before the first token (prefill), ms. */
  prefillMs?: number;
  /** Delay between tokens, ms. */
  tokenMs?: number;
  /** Tokens generated when the request sets no maxTokens. */
  defaultMaxTokens?: number;
  /** Prompt tokens counted per message character (default: 1 token per 4 chars, at least 1 per message). */
  countPrompt?: (request: Pick<ChatRequest, "messages">) => number;
  contextLength?: number;
  capacity?: number;
  /** Fail after this many tokens with BACKEND_UNREACHABLE (mid-stream failure). */
  failAfterTokens?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export interface ScriptedBackend extends Backend {
  /** Requests being generated now. */
  active(): number;
  /** Every request received, in order. */
  readonly received: ChatRequest[];
  /** How each request ended, with the tokens it generated, in order of ending. */
  readonly finished: Array<{ reason: FinishReason; completionTokens: number }>;
}

export function createScriptedBackend(options: ScriptedBackendOptions = {}): ScriptedBackend {
  const models = options.models ?? ["scripted"];
  const tokens = options.tokens ?? ["tok", "en", " "];
  const countPrompt =
    options.countPrompt ??
    ((request: Pick<ChatRequest, "messages">) =>
      request.messages.reduce((sum, m) => sum + Math.max(1, Math.ceil(m.content.length / 4)), 0));
  const received: ChatRequest[] = [];
  const finished: Array<{ reason: FinishReason; completionTokens: number }> = [];
  let active = 0;

  async function* chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    if (!models.includes(request.model)) {
      throw new GbtError("MODEL_NOT_FOUND", `The model '${request.model}' does not exist on this node.`);
    }
    const promptTokens = countPrompt(request);
    if (options.contextLength !== undefined && promptTokens >= options.contextLength) {
      throw new GbtError(
        "CONTEXT_LENGTH_EXCEEDED",
        `The prompt has ${promptTokens} tokens; the context holds ${options.contextLength}.`,
      );
    }
    if (options.capacity !== undefined && active >= options.capacity) {
      throw new GbtError("BUSY", "The scripted backend is at capacity.");
    }
    received.push(request);
    active++;
    try {
      const limit = request.maxTokens ?? options.defaultMaxTokens ?? 16;
      const start = performance.now();
      await sleep(options.prefillMs ?? 0, request.signal);
      const prefillDone = performance.now();
      let generated = 0;
      while (generated < limit) {
        if (request.signal?.aborted) {
          finished.push({ reason: "abort", completionTokens: generated });
          yield { type: "done", finishReason: "abort", usage: { promptTokens, completionTokens: generated } };
          return;
        }
        if (options.failAfterTokens !== undefined && generated >= options.failAfterTokens) {
          throw new GbtError("BACKEND_UNREACHABLE", "The scripted backend failed mid-stream.");
        }
        if (generated > 0) await sleep(options.tokenMs ?? 0, request.signal);
        if (request.signal?.aborted) continue;
        yield { type: "delta", text: tokens[generated % tokens.length] as string };
        generated++;
      }
      const end = performance.now();
      finished.push({ reason: "length", completionTokens: generated });
      yield {
        type: "done",
        finishReason: "length",
        usage: { promptTokens, completionTokens: generated },
        timings: {
          promptMs: prefillDone - start,
          decodeMs: end - prefillDone,
          promptTokens,
          decodeTokens: generated,
          source: "scripted",
        },
      };
    } finally {
      active--;
    }
  }

  return {
    kind: "embedded",
    location: "scripted",
    received,
    finished,
    active: () => active,
    async health() {
      return { ok: true, version: "scripted" };
    },
    async listModels(): Promise<ModelInfo[]> {
      return models.map((id) => ({
        id,
        ...(options.contextLength ? { contextLength: options.contextLength } : {}),
      }));
    },
    chatStream,
    chat: (request) => collectChat(chatStream(request)),
    async close() {},
  };
}
