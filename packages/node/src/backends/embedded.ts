/**
 * The embedded backend: llama.cpp in this process through node-llama-cpp@3, serving GGUF files
 * (an explicit list and/or every `*.gguf` in a models dir; id = file name without `.gguf`).
 *
 * - node-llama-cpp is imported on first use (importing it costs ~0.5 s, which CLI commands that
 *   never infer should not pay). One `Llama` per GPU setting per process, never disposed:
 *   disposing one frees llama.cpp's process-wide backend and breaks every other instance.
 * - A model loads on first use into one context with `capacity` sequences; each request takes a
 *   sequence, evaluates its prompt from an empty state and gives the sequence back. No prompt
 *   prefix cache: a reused KV state is evaluated in different batch shapes, which changes floats,
 *   and seeded requests must give identical text.
 * - The prompt is the model's own chat template (node-llama-cpp's chat wrapper resolved from the
 *   GGUF), tokenized by llama.cpp; usage counts those tokens and the tokens generated.
 * - Timings: node-llama-cpp exposes llama.cpp's perf counters only as log text (`printTimings`),
 *   per context, mixed across parallel sequences and reset on print. So the backend times its own
 *   calls into node-llama-cpp's evaluator (source {@link EMBEDDED_TIMINGS_SOURCE}): prefill is the
 *   first step (prompt decode + first sample), decode the later steps, each one token. These
 *   include node-llama-cpp's batching and sampling, and exclude time spent waiting for the reader.
 */
import { randomInt } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { GbtError, isGbtError, sha256File } from "@gbt/protocol";
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import {
  type Backend,
  type BackendHealth,
  type BackendTimings,
  type ChatMessage,
  type ChatRequest,
  type ChatStreamEvent,
  collectChat,
  type FinishReason,
  type ModelInfo,
} from "./types.js";

/** A GGUF file served under an id. */
export interface EmbeddedModelFile {
  id: string;
  path: string;
  /**
   * The sha256 (hex) its signed model manifest gives for this GGUF: the file is hashed before it
   * loads and refused (ARTIFACT_MISMATCH) when it differs. Absent: no manifest, no check.
   */
  sha256?: string;
}

export interface EmbeddedBackendOptions {
  /** Models served under explicit ids; they win over same-named files of `modelsDir`. */
  models?: EmbeddedModelFile[];
  /** A directory whose `*.gguf` files are served, id = file name without `.gguf` (read on each listing). */
  modelsDir?: string;
  /** Offload to a GPU when node-llama-cpp finds one (default false: CPU only). */
  gpu?: boolean;
  /** llama.cpp threads per context (default {@link defaultThreads} for this machine). */
  threads?: number;
  /** Requests generated at once, across models; one more is refused with BUSY (default 1). */
  capacity?: number;
  /** Context (tokens) of each request: prompt + completion (default: the model's trained context, at most 4096). */
  contextSize?: number;
}

/** Label of the timings this backend reports: measured by gbt around each step of node-llama-cpp (evaluation, sampling, detokenizing). */
export const EMBEDDED_TIMINGS_SOURCE = "gbt:node-llama-cpp-evaluate-clock";
export const DEFAULT_EMBEDDED_CAPACITY = 1;
/** Upper bound of the default context per request; each of `capacity` sequences holds this many tokens of KV cache. */
export const DEFAULT_EMBEDDED_CONTEXT_CAP = 4096;
/** Temperature when a request sets none: llama.cpp's own default (node-llama-cpp's would be greedy). */
export const DEFAULT_EMBEDDED_TEMPERATURE = 0.8;

/** Tokens before a piece that the detokenizer sees, so spaces and merges come out as in a whole text. */
const DETOKENIZE_CONTEXT_TOKENS = 8;
/** A UTF-8 character spans at most 4 byte tokens: hold at most that many while the text ends mid-character. */
const MAX_HELD_TOKENS = 4;

/**
 * A safe llama.cpp thread count for this machine. Measured on a 2-core x64 VM (CPU only, AVX2):
 * the tiny test model decodes at ~2500 tok/s with 1 thread, ~84 tok/s with 2 and ~5 with 3; the
 * small one at ~1450 / 63 / 2. llama.cpp's threads spin at a barrier after every op, and a
 * thread that shares a core with Node's event loop (which drives node-llama-cpp's batching and
 * sampling) stalls each barrier. Heavier models lose less and can gain: a 95M-parameter model
 * decoded 50 → 54 tok/s, the ~1B `1b` test model 4.6 → 6.0 tok/s with the second thread (set
 * `threads` to take that on a dedicated machine). So: 1 thread up to 2 logical CPUs; beyond,
 * one per physical core (SMT siblings share the core's compute and memory path) while always
 * leaving one logical CPU to the event loop.
 */
export function defaultThreads(
  logicalCpus: number = availableParallelism(),
  physicalCores: number = logicalCpus,
): number {
  if (logicalCpus <= 2) return 1;
  return Math.max(1, Math.min(physicalCores, logicalCpus - 1));
}

type NodeLlamaCpp = typeof import("node-llama-cpp");

let nodeLlamaCppModule: Promise<NodeLlamaCpp> | undefined;
/** One Llama per GPU setting per process (see the module header: they are never disposed). */
const llamaInstances = new Map<"cpu" | "gpu", Promise<Llama>>();

function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  nodeLlamaCppModule ??= import("node-llama-cpp").catch((error: unknown) => {
    nodeLlamaCppModule = undefined;
    throw error;
  });
  return nodeLlamaCppModule;
}

function sharedLlama(gpu: boolean): Promise<Llama> {
  const key = gpu ? "gpu" : "cpu";
  let instance = llamaInstances.get(key);
  if (!instance) {
    // maxThreads 0: no process-wide thread budget; each context runs exactly the threads it is given.
    instance = importNodeLlamaCpp().then((llamaCpp) =>
      llamaCpp.getLlama({
        gpu: gpu ? "auto" : false,
        build: "never",
        maxThreads: 0,
        skipDownload: true,
        progressLogs: false,
      }),
    );
    instance.catch(() => llamaInstances.delete(key));
    llamaInstances.set(key, instance);
  }
  return instance;
}

interface LoadedModel {
  id: string;
  path: string;
  model: LlamaModel;
  context: LlamaContext;
  /** Tokens per request (prompt + completion): the size asked for, though llama.cpp may round the context up. */
  contextSize: number;
  chatWrapper: ChatWrapper;
}

interface RenderedPrompt {
  tokens: Token[];
  /** Single-token stop triggers of the chat template (beyond llama.cpp's end-of-generation tokens). */
  stopTokens: Set<Token>;
  /** Plain-text stop triggers of the chat template. */
  stopTexts: string[];
}

/** A request holding one of the `capacity` slots. */
interface Slot {
  modelId: string;
  /** Aborted by unloadModel / close. */
  controller: AbortController;
  /** Resolves once the slot's sequence is given back. */
  released: Promise<void>;
}

const ABORTED = Symbol("aborted");

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT";
}

/** Maps any integer seed (OpenAI allows ±2^53) onto llama.cpp's uint32 seeds, distinct values staying distinct mod 2^32. */
function toUint32Seed(seed: number): number {
  if (!Number.isFinite(seed)) {
    throw new GbtError("INVALID_INPUT", `The seed must be a finite integer, got ${seed}.`, {
      details: { seed },
    });
  }
  const modulus = 2 ** 32;
  return ((Math.trunc(seed) % modulus) + modulus) % modulus;
}

function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history = messages.map((message): ChatHistoryItem => {
    if (message.role === "assistant") return { type: "model", response: [message.content] };
    return { type: message.role, text: message.content };
  });
  // A trailing assistant message is continued; otherwise the template opens a new assistant turn.
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}

/**
 * Turns generated tokens into text as it streams: holds tokens while their text ends inside a
 * UTF-8 character, and holds text that could be the start of a stop string.
 */
class CompletionText {
  private heldTokens: Token[] = [];
  private heldText = "";

  constructor(
    private readonly model: LlamaModel,
    private previousTokens: Token[],
    private readonly stopStrings: string[],
  ) {}

  /** Adds a token; returns the text now safe to emit, and whether a stop string ended the completion. */
  push(token: Token): { text: string; stopped: boolean } {
    this.heldTokens.push(token);
    const text = this.model.detokenize(this.heldTokens, false, this.previousTokens);
    if (text.endsWith("\uFFFD") && this.heldTokens.length < MAX_HELD_TOKENS)
      return { text: "", stopped: false };
    this.previousTokens = [...this.previousTokens, ...this.heldTokens].slice(-DETOKENIZE_CONTEXT_TOKENS);
    this.heldTokens = [];
    return this.applyStops(text);
  }

  /** Everything still held, for a completion that ended without a stop string. */
  flush(): string {
    const text =
      this.heldTokens.length > 0 ? this.model.detokenize(this.heldTokens, false, this.previousTokens) : "";
    const rest = this.heldText + text;
    this.heldTokens = [];
    this.heldText = "";
    return rest;
  }

  private applyStops(text: string): { text: string; stopped: boolean } {
    const held = this.heldText + text;
    let cut = -1;
    for (const stop of this.stopStrings) {
      const index = held.indexOf(stop);
      if (index >= 0 && (cut < 0 || index < cut)) cut = index;
    }
    if (cut >= 0) {
      this.heldText = "";
      return { text: held.slice(0, cut), stopped: true };
    }
    // Keep the longest tail that a stop string starts with; everything before it is final.
    let keep = 0;
    for (const stop of this.stopStrings) {
      for (let length = Math.min(stop.length - 1, held.length); length > keep; length--) {
        if (held.endsWith(stop.slice(0, length))) {
          keep = length;
          break;
        }
      }
    }
    this.heldText = held.slice(held.length - keep);
    return { text: held.slice(0, held.length - keep), stopped: false };
  }
}

/**
 * Creates the in-process llama.cpp backend. Nothing loads until first use: the native binding on
 * the first call that needs it, each model on its first request (or `loadModel`).
 *
 * Limits and behaviour: a prompt that leaves no room in the context fails with
 * CONTEXT_LENGTH_EXCEEDED; a completion stops with "length" at `maxTokens` or when the context is
 * full (never shifting the prompt out); aborting stops within one token step, gives the sequence
 * back, and ends the stream with a `done` event ("abort") counting the tokens generated.
 */
export function createEmbeddedBackend(options: EmbeddedBackendOptions = {}): Backend {
  const capacity = options.capacity ?? DEFAULT_EMBEDDED_CAPACITY;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new GbtError(
      "INVALID_INPUT",
      `The embedded backend's capacity must be a positive integer, got ${capacity}.`,
    );
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new GbtError(
      "INVALID_INPUT",
      `The embedded backend's threads must be a positive integer, got ${options.threads}.`,
    );
  }
  if (
    options.contextSize !== undefined &&
    (!Number.isInteger(options.contextSize) || options.contextSize < 16)
  ) {
    throw new GbtError(
      "INVALID_INPUT",
      `The embedded backend's contextSize must be an integer of at least 16, got ${options.contextSize}.`,
    );
  }
  const gpu = options.gpu ?? false;
  const explicitModels = new Map((options.models ?? []).map((model) => [model.id, resolve(model.path)]));
  const manifestDigests = new Map(
    (options.models ?? []).flatMap((model) =>
      model.sha256 === undefined ? [] : [[model.id, `sha256:${model.sha256.toLowerCase()}`] as const],
    ),
  );
  const modelsDir = options.modelsDir === undefined ? undefined : resolve(options.modelsDir);

  /** Models loading or loaded, by id. */
  const loading = new Map<string, Promise<LoadedModel>>();
  /** Models loaded, by id (the settled subset of `loading`). */
  const loaded = new Map<string, LoadedModel>();
  const slots = new Set<Slot>();
  const digests = new Map<string, { size: number; mtimeMs: number; digest: Promise<string> }>();
  let closed = false;
  let threads: number | undefined = options.threads;

  function ensureOpen(): void {
    if (closed) throw new GbtError("BACKEND_UNREACHABLE", "The embedded backend is closed.");
  }

  async function llama(): Promise<Llama> {
    try {
      const instance = await sharedLlama(gpu);
      threads ??= defaultThreads(availableParallelism(), instance.cpuMathCores);
      return instance;
    } catch (error) {
      throw new GbtError(
        "BACKEND_UNREACHABLE",
        `llama.cpp could not start in this process: ${errorMessage(error)}`,
        {
          hint: "Reinstall gbt so that node-llama-cpp's prebuilt binary for this platform is present (`npm ci`).",
          cause: error,
        },
      );
    }
  }

  /** id → path of every model served now (the models dir is read on each call). */
  async function modelFiles(): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    if (modelsDir !== undefined) {
      let names: string[] = [];
      try {
        names = await readdir(modelsDir);
      } catch (error) {
        if (!isNotFound(error)) {
          throw new GbtError("IO_ERROR", `Could not read the models dir ${modelsDir}.`, {
            details: { modelsDir },
            cause: error,
          });
        }
      }
      for (const name of names.sort()) {
        if (name.endsWith(".gguf") && name.length > ".gguf".length)
          files.set(name.slice(0, -".gguf".length), join(modelsDir, name));
      }
    }
    for (const [id, path] of explicitModels) files.set(id, path);
    return files;
  }

  function modelNotFound(id: string, known: string[], path?: string): GbtError {
    return new GbtError(
      "MODEL_NOT_FOUND",
      path === undefined
        ? `The embedded backend has no model '${id}'.`
        : `The GGUF file of model '${id}' is missing: ${path}.`,
      {
        details: { model: id, available: known, ...(path === undefined ? {} : { path }) },
        hint:
          known.length > 0
            ? `Use one of: ${known.join(", ")}.`
            : "Add a .gguf file to the models dir, or configure a model path.",
      },
    );
  }

  function loadEntry(id: string): Promise<LoadedModel> {
    const existing = loading.get(id);
    if (existing) return existing;
    // Compared after the load: an unloadModel or close() during it removes (or replaces) this entry.
    let promise: Promise<LoadedModel> | undefined;
    promise = (async () => {
      const files = await modelFiles();
      const path = files.get(id);
      if (path === undefined) throw modelNotFound(id, [...files.keys()]);
      await checkManifestDigest(id, path);
      const instance = await llama();
      let model: LlamaModel;
      try {
        model = await instance.loadModel({ modelPath: path, ...(gpu ? {} : { gpuLayers: 0 }) });
      } catch (error) {
        if (isNotFound(error) || !(await stat(path).catch(() => undefined)))
          throw modelNotFound(id, [...files.keys()], path);
        throw new GbtError(
          "INVALID_INPUT",
          `llama.cpp could not load model '${id}' from ${path}: ${errorMessage(error)}`,
          {
            details: { model: id, path },
            hint: "Check that the file is a complete GGUF model of an architecture this llama.cpp supports.",
            cause: error,
          },
        );
      }
      try {
        const { resolveChatWrapper } = await importNodeLlamaCpp();
        const contextSize =
          options.contextSize ??
          Math.min(model.trainContextSize || DEFAULT_EMBEDDED_CONTEXT_CAP, DEFAULT_EMBEDDED_CONTEXT_CAP);
        const context = await model.createContext({
          contextSize,
          sequences: capacity,
          threads: threads ?? 1,
        });
        const entry: LoadedModel = {
          id,
          path,
          model,
          context,
          contextSize: Math.min(contextSize, context.contextSize),
          chatWrapper: resolveChatWrapper(model),
        };
        if (closed || loading.get(id) !== promise) {
          await context.dispose();
          throw new GbtError("BACKEND_UNREACHABLE", `Model '${id}' was unloaded while it loaded.`);
        }
        loaded.set(id, entry);
        return entry;
      } catch (error) {
        await model.dispose();
        if (isGbtError(error)) throw error;
        throw new GbtError(
          "INVALID_INPUT",
          `llama.cpp could not create a context for model '${id}': ${errorMessage(error)}`,
          {
            details: { model: id, contextSize: options.contextSize, capacity },
            hint: "Lower the context size or the capacity (each parallel request holds a full context of KV cache).",
            cause: error,
          },
        );
      }
    })();
    const settled = promise;
    loading.set(id, settled);
    settled.catch(() => {
      if (loading.get(id) === settled) loading.delete(id);
    });
    return settled;
  }

  function renderPrompt(entry: LoadedModel, messages: ChatMessage[]): RenderedPrompt {
    const state = entry.chatWrapper.generateContextState({ chatHistory: toChatHistory(messages) });
    const tokens = state.contextText.tokenize(entry.model.tokenizer);
    const stopTokens = new Set<Token>();
    const stopTexts: string[] = [];
    for (const trigger of state.stopGenerationTriggers) {
      if (trigger.values.every((value) => typeof value === "string")) {
        const text = trigger.values.join("");
        if (text !== "") stopTexts.push(text);
        continue;
      }
      const triggerTokens = trigger.tokenize(entry.model.tokenizer);
      if (triggerTokens.length === 1 && triggerTokens[0] !== undefined) stopTokens.add(triggerTokens[0]);
    }
    return { tokens, stopTokens, stopTexts };
  }

  function contextTooSmall(entry: LoadedModel, promptTokens: number): GbtError {
    const contextSize = entry.contextSize;
    return new GbtError(
      "CONTEXT_LENGTH_EXCEEDED",
      `The prompt is ${promptTokens} tokens; model '${entry.id}' has a context of ${contextSize} tokens, which leaves no room to generate.`,
      {
        details: { model: entry.id, promptTokens, contextSize },
        hint: "Shorten the messages, or raise the embedded backend's context size.",
      },
    );
  }

  async function* chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    ensureOpen();
    if (request.maxTokens !== undefined && (!Number.isInteger(request.maxTokens) || request.maxTokens < 0)) {
      throw new GbtError(
        "INVALID_INPUT",
        `maxTokens must be a non-negative integer, got ${request.maxTokens}.`,
      );
    }
    if (request.signal?.aborted) {
      yield { type: "done", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } };
      return;
    }
    if (slots.size >= capacity) {
      throw new GbtError(
        "BUSY",
        `The embedded backend is already generating ${slots.size} of its ${capacity} parallel requests.`,
        {
          details: { capacity },
          hint: "Retry when a request finishes, or raise the capacity.",
        },
      );
    }

    let sequence: LlamaContextSequence | undefined;
    let evaluation: ReturnType<LlamaContextSequence["evaluate"]> | undefined;
    let releasing: Promise<void> | undefined;
    let markReleased: () => void = () => {};
    const slot: Slot = {
      modelId: request.model,
      controller: new AbortController(),
      released: new Promise<void>((resolveReleased) => {
        markReleased = resolveReleased;
      }),
    };
    slots.add(slot);
    // Gives the sequence back: waits for the step in flight (one token at most), then frees its KV cells.
    const release = () => {
      releasing ??= (async () => {
        try {
          await evaluation?.return();
          await sequence?.dispose();
        } catch {
          // A failed evaluator or sequence is given up either way; the slot must come back.
        } finally {
          slots.delete(slot);
          markReleased();
        }
      })();
      return releasing;
    };
    const signal = request.signal
      ? AbortSignal.any([request.signal, slot.controller.signal])
      : slot.controller.signal;
    let onAbort: () => void = () => {};
    const aborted = new Promise<typeof ABORTED>((resolveAborted) => {
      onAbort = () => {
        resolveAborted(ABORTED);
        // Free the slot now, even if the reader of this stream never pulls again.
        void release();
      };
    });
    signal.addEventListener("abort", onAbort, { once: true });

    try {
      const entry = await loadEntry(request.model);
      const prompt = renderPrompt(entry, request.messages);
      const contextSize = entry.contextSize;
      if (prompt.tokens.length >= contextSize) throw contextTooSmall(entry, prompt.tokens.length);
      const maxTokens = Math.min(
        request.maxTokens ?? Number.POSITIVE_INFINITY,
        contextSize - prompt.tokens.length,
      );
      const usage = { promptTokens: prompt.tokens.length, completionTokens: 0 };
      const timings: BackendTimings & { promptMs: number; decodeMs: number; decodeTokens: number } = {
        promptMs: 0,
        decodeMs: 0,
        promptTokens: prompt.tokens.length,
        decodeTokens: 0,
        source: EMBEDDED_TIMINGS_SOURCE,
      };
      const completion = new CompletionText(entry.model, prompt.tokens.slice(-DETOKENIZE_CONTEXT_TOKENS), [
        ...(request.stop ?? []).filter((stop) => stop !== ""),
        ...prompt.stopTexts,
      ]);

      // No await between this check and taking the sequence: an abort after it finds the sequence to free.
      if (signal.aborted) {
        await release();
        yield { type: "done", finishReason: "abort", usage, timings };
        return;
      }
      sequence = entry.context.getSequence();
      evaluation = sequence.evaluate(prompt.tokens, {
        temperature: request.temperature ?? DEFAULT_EMBEDDED_TEMPERATURE,
        ...(request.topP !== undefined ? { topP: request.topP } : {}),
        seed: request.seed !== undefined ? toUint32Seed(request.seed) : randomInt(2 ** 32),
        // Seen and counted like any sampled token (llama.cpp's server counts it too); generation then stops.
        yieldEogToken: true,
      });

      let finishReason: FinishReason | undefined;
      let firstStep = true;
      while (finishReason === undefined) {
        if (signal.aborted) {
          finishReason = "abort";
          break;
        }
        if (usage.completionTokens >= maxTokens) {
          finishReason = "length";
          break;
        }
        const started = performance.now();
        const next = evaluation.next();
        next.catch(() => {}); // when the abort wins the race below, release() settles this step
        const step = await Promise.race([next, aborted]);
        if (step === ABORTED) {
          finishReason = "abort";
          break;
        }
        // The backend's own clock covers its whole per-token work (evaluation, sampling and
        // detokenizing), never the time the consumer takes to read the piece.
        const account = () => {
          const elapsed = performance.now() - started;
          if (firstStep) timings.promptMs = elapsed;
          else {
            timings.decodeMs += elapsed;
            timings.decodeTokens++;
          }
          firstStep = false;
        };
        if (step.done) {
          account();
          finishReason = "stop";
          break;
        }
        usage.completionTokens++;
        if (entry.model.isEogToken(step.value) || prompt.stopTokens.has(step.value)) {
          account();
          finishReason = "stop";
          break;
        }
        const piece = completion.push(step.value);
        account();
        if (piece.text !== "") yield { type: "delta", text: piece.text };
        if (piece.stopped) finishReason = "stop";
      }
      if (finishReason !== "stop") {
        const rest = completion.flush();
        if (rest !== "") yield { type: "delta", text: rest };
      }
      await release();
      yield { type: "done", finishReason, usage, timings };
    } catch (error) {
      if (isGbtError(error)) throw error;
      throw new GbtError("INTERNAL", `The embedded backend failed while generating: ${errorMessage(error)}`, {
        cause: error,
      });
    } finally {
      signal.removeEventListener("abort", onAbort);
      await release();
    }
  }

  async function fileDigest(path: string, size: number, mtimeMs: number): Promise<string> {
    const cached = digests.get(path);
    if (cached && cached.size === size && cached.mtimeMs === mtimeMs) return cached.digest;
    const digest = sha256File(path).then((file) => `sha256:${file.sha256}`);
    digests.set(path, { size, mtimeMs, digest });
    digest.catch(() => digests.delete(path));
    return digest;
  }

  /** Refuses a GGUF whose sha256 is not the one its manifest signed (checked before every load). */
  async function checkManifestDigest(id: string, path: string): Promise<void> {
    const expected = manifestDigests.get(id);
    if (expected === undefined) return;
    const info = await stat(path).catch(() => undefined);
    if (!info) return; // Missing files fail the load with MODEL_NOT_FOUND.
    const actual = await fileDigest(path, info.size, info.mtimeMs);
    if (actual !== expected) {
      throw new GbtError(
        "ARTIFACT_MISMATCH",
        `The GGUF of model '${id}' (${path}) does not match its manifest: refusing to serve it.`,
        {
          details: { model: id, path, expected, actual },
          hint: "Restore the file the manifest was signed for, or serve the model with its new manifest.",
        },
      );
    }
  }

  async function trainedContextLength(path: string): Promise<number | undefined> {
    try {
      const { readGgufFileInfo } = await importNodeLlamaCpp();
      const info = await readGgufFileInfo(path, { readTensorInfo: false });
      const length = (info.architectureMetadata as { context_length?: unknown }).context_length;
      return typeof length === "number" ? length : undefined;
    } catch {
      return undefined;
    }
  }

  async function listModels(): Promise<ModelInfo[]> {
    ensureOpen();
    const models: ModelInfo[] = [];
    for (const [id, path] of await modelFiles()) {
      const info = await stat(path).catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw new GbtError("IO_ERROR", `Could not read model file ${path}.`, {
          details: { model: id, path },
          cause: error,
        });
      });
      if (!info?.isFile()) continue;
      const entry = loaded.get(id);
      const trained = entry ? undefined : await trainedContextLength(path);
      const contextLength =
        entry?.contextSize ??
        options.contextSize ??
        (trained === undefined ? undefined : Math.min(trained, DEFAULT_EMBEDDED_CONTEXT_CAP));
      models.push({
        id,
        digest: await fileDigest(path, info.size, info.mtimeMs),
        sizeBytes: info.size,
        ...(contextLength === undefined ? {} : { contextLength }),
        details: { path, loaded: entry !== undefined, format: "gguf" },
      });
    }
    return models;
  }

  async function health(): Promise<BackendHealth> {
    const started = performance.now();
    try {
      ensureOpen();
      const instance = await llama();
      const { getModuleVersion } = await importNodeLlamaCpp();
      const release = instance.llamaCppRelease;
      return {
        ok: true,
        version: `node-llama-cpp ${await getModuleVersion()} (llama.cpp ${release.release}, ${release.repo})`,
        detail: `${instance.buildType} binary, ${instance.gpu === false ? "CPU only" : `GPU: ${instance.gpu}`}, ${threads} threads, ${loaded.size} model(s) loaded; ${instance.systemInfo.trim()}`,
        latencyMs: performance.now() - started,
      };
    } catch (error) {
      return { ok: false, detail: errorMessage(error), latencyMs: performance.now() - started };
    }
  }

  async function unloadModel(id: string): Promise<void> {
    const pending = loading.get(id);
    if (!pending) return;
    loading.delete(id);
    const inUse = [...slots].filter((slot) => slot.modelId === id);
    for (const slot of inUse) slot.controller.abort(new Error(`model '${id}' unloaded`));
    await Promise.all(inUse.map((slot) => slot.released));
    const entry = await pending.catch(() => undefined);
    if (!entry) return;
    loaded.delete(id);
    await entry.context.dispose();
    await entry.model.dispose();
  }

  return {
    kind: "embedded",
    location: "in-process",
    health,
    listModels,
    chatStream,
    chat: (request) => collectChat(chatStream(request)),
    async countPromptTokens(request) {
      ensureOpen();
      const entry = await loadEntry(request.model);
      return renderPrompt(entry, request.messages).tokens.length;
    },
    async loadModel(id) {
      ensureOpen();
      await loadEntry(id);
    },
    unloadModel,
    addModelFile(id, path) {
      ensureOpen();
      explicitModels.set(id, resolve(path));
    },
    async forgetModel(id) {
      ensureOpen();
      await unloadModel(id);
      explicitModels.delete(id);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...loading.keys()].map((id) => unloadModel(id)));
    },
  };
}
