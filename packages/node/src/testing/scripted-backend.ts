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
  type EmbedRequest,
  type EmbedResult,
  type FinishReason,
  type ModelCapabilities,
  type ModelInfo,
} from "../backends/types.js";

export interface ScriptedBackendOptions {
  models?: string[];
  /** Pieces of text generated, one token each (cycled up to maxTokens). */
  tokens?: string[];
  /**
   * Each token is the time it was generated (epoch ms, µs precision, then a space), so that a
   * client on this machine can measure each chunk's delay on its way (bench/outbound-link.mjs).
   */
  stampTokens?: boolean;
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
  /**
   * What every model can do (listed by listModels; absent: chat only, as a backend that says
   * nothing). With `tools`, a request with tools (choice not `none`) is answered by one call to the
   * named or first tool, its arguments `{"scripted":true}` in three fragments (three tokens),
   * finish `tool_calls`; with `embeddings`, embed() gives 8 deterministic numbers per input (or
   * `dimensions`), unit length, with one prompt token per 4 characters.
   */
  capabilities?: ModelCapabilities;
}

/** The scripted tool call's arguments, as three streamed fragments. */
export const SCRIPTED_TOOL_ARGUMENTS = ['{"scr', 'ipted"', ":true}"] as const;

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
  /** Every embedding request received, in order. */
  readonly embedded: EmbedRequest[];
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
  const embedded: EmbedRequest[] = [];
  let calls = 0;
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
      const tools = request.tools ?? [];
      if (options.capabilities?.tools && tools.length > 0 && request.toolChoice !== "none") {
        const choice = request.toolChoice;
        const name = typeof choice === "object" ? choice.name : (tools[0]?.name as string);
        const id = `call_scripted_${++calls}`;
        for (const [i, fragment] of SCRIPTED_TOOL_ARGUMENTS.entries()) {
          if (i > 0) await sleep(options.tokenMs ?? 0, request.signal);
          yield i === 0
            ? { type: "tool_call", index: 0, id, name, arguments: fragment }
            : { type: "tool_call", index: 0, arguments: fragment };
        }
        finished.push({ reason: "tool_calls", completionTokens: SCRIPTED_TOOL_ARGUMENTS.length });
        yield {
          type: "done",
          finishReason: "tool_calls",
          usage: { promptTokens, completionTokens: SCRIPTED_TOOL_ARGUMENTS.length },
        };
        return;
      }
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
        yield {
          type: "delta",
          text: options.stampTokens
            ? `${(performance.timeOrigin + performance.now()).toFixed(3)} `
            : (tokens[generated % tokens.length] as string),
        };
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

  async function embed(request: EmbedRequest): Promise<EmbedResult> {
    if (!models.includes(request.model)) {
      throw new GbtError("MODEL_NOT_FOUND", `The model '${request.model}' does not exist on this node.`);
    }
    embedded.push(request);
    const size = request.dimensions ?? 8;
    const embeddings = request.input.map((text) => {
      const raw = Array.from({ length: size }, (_, i) => {
        let h = i + 1;
        for (const c of text) h = (h * 31 + (c.codePointAt(0) as number)) % 1_000_003;
        return (h % 2001) / 1000 - 1;
      });
      const norm = Math.hypot(...raw) || 1;
      return raw.map((x) => x / norm);
    });
    const promptTokens = request.input.reduce(
      (sum, text) => sum + Math.max(1, Math.ceil(text.length / 4)),
      0,
    );
    return { embeddings, promptTokens };
  }

  return {
    kind: "embedded",
    location: "scripted",
    received,
    embedded,
    finished,
    active: () => active,
    async health() {
      return { ok: true, version: "scripted" };
    },
    async listModels(): Promise<ModelInfo[]> {
      return models.map((id) => ({
        id,
        ...(options.contextLength ? { contextLength: options.contextLength } : {}),
        ...(options.capabilities ? { capabilities: options.capabilities } : {}),
      }));
    },
    chatStream,
    completeStream: ({ prompt, ...rest }) =>
      chatStream({ ...rest, messages: [{ role: "user", content: prompt }] }),
    ...(options.capabilities?.embeddings ? { embed } : {}),
    chat: (request) => collectChat(chatStream(request)),
    async close() {},
  };
}
