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
 * - Structured output: `response_format` json_object / json_schema and forced tool calls
 *   (`tool_choice` required or a name) constrain sampling with a grammar (embedded-grammar.ts,
 *   embedded-tools.ts); `tool_choice` auto runs node-llama-cpp's LlamaChat, which calls functions
 *   in the model's own syntax. One call per forced answer; the node never runs a tool.
 * - Raw completions evaluate the prompt's own tokens (no chat template) through the same loop.
 * - Embeddings: one embedding context per model, created on first use and disposed with the
 *   model; requests run one at a time per model, outside the generation slots; vectors unit length.
 */
import { randomInt } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { GbtError, httpError, isGbtError, sha256File } from "@gbt/protocol";
import type {
  ChatHistoryItem,
  ChatModelFunctions,
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaGrammar,
  LlamaModel,
  LlamaText,
  Token,
} from "node-llama-cpp";
import { normalizeEmbedding } from "./embedded-embeddings.js";
import { compileSchemaGrammar } from "./embedded-grammar.js";
import { toChatHistory } from "./embedded-history.js";
import {
  describeTools,
  ForcedCallStream,
  forcedCallSchema,
  newToolCallId,
  resolveToolMode,
  toolParamsSchema,
} from "./embedded-tools.js";
import {
  type Backend,
  type BackendHealth,
  type BackendTimings,
  type ChatRequest,
  type ChatStreamEvent,
  type CompletionRequest,
  collectChat,
  type EmbedRequest,
  type EmbedResult,
  type FinishReason,
  type ModelCapabilities,
  type ModelInfo,
  type ToolDefinition,
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
  /**
   * The llama.cpp GPU backend: `cuda`, `vulkan` or `metal` (resolve it first with the GPU resolver,
   * packages/node/src/gpu), `true` for node-llama-cpp's own pick, `false` (default) for the CPU.
   */
  gpu?: boolean | "cuda" | "vulkan" | "metal";
  /**
   * Layers offloaded to the GPU (default `auto`: as many as fit in free VRAM, node-llama-cpp's
   * estimate; `max`: all of them or refuse). A model loaded only partly offloaded is reported through
   * `onWarning` with the number of layers that fit.
   */
  gpuLayers?: number | "auto" | "max";
  /** Receives warnings a user should see (partial offload); default: none. */
  onWarning?: (message: string) => void;
  /**
   * llama.cpp threads per context. Default: on the CPU {@link defaultThreads} for this machine; on
   * a GPU node-llama-cpp's own default (the GPU does the math, more threads do not help).
   */
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
/** Grammars kept compiled, per backend (by schema). */
const GRAMMAR_CACHE_SIZE = 64;
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

/**
 * llama.cpp warns on every embedding that it marks all tokens as outputs (node-llama-cpp asks for
 * the last one only, a pooled embedding needs them all): expected, harmless, and one line per
 * request in the node's log, so it is dropped.
 */
const EMBEDDING_OUTPUTS_NOTE = "embeddings required but some input tokens were not marked as outputs";

let nodeLlamaCppModule: Promise<NodeLlamaCpp> | undefined;
/** One Llama per GPU setting per process (see the module header: they are never disposed). */
const llamaInstances = new Map<string, Promise<Llama>>();

function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  nodeLlamaCppModule ??= import("node-llama-cpp").catch((error: unknown) => {
    nodeLlamaCppModule = undefined;
    throw error;
  });
  return nodeLlamaCppModule;
}

/**
 * The process's Llama for one GPU setting (`false`: CPU; `"auto"`: node-llama-cpp's pick). An
 * explicit GPU backend whose binary or driver is missing fails (build "never": nothing compiles).
 */
export function sharedLlama(gpu: false | "auto" | "cuda" | "vulkan" | "metal"): Promise<Llama> {
  const key = gpu === false ? "cpu" : gpu;
  let instance = llamaInstances.get(key);
  if (!instance) {
    instance = importNodeLlamaCpp().then((llamaCpp) =>
      llamaCpp.getLlama({
        gpu,
        build: "never",
        // CPU: no process-wide thread budget; each context runs exactly the threads it is given.
        // GPU: node-llama-cpp's default budget.
        ...(gpu === false ? { maxThreads: 0 } : {}),
        skipDownload: true,
        progressLogs: false,
        logger: (level, message) => {
          if (!message.includes(EMBEDDING_OUTPUTS_NOTE)) llamaCpp.Llama.defaultConsoleLogger(level, message);
        },
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
  /** The embedding context, created on the first embeddings request. */
  embedding?: Promise<LlamaEmbeddingContext>;
  /** The embeddings request in flight (they run one at a time). */
  embedQueue: Promise<unknown>;
  /** Aborted when the model unloads: stops an embeddings request between inputs. */
  closing: AbortController;
}

/** The sampling fields a generation honours (chat and raw completions alike). */
type GenerationRequest = Pick<
  ChatRequest,
  "model" | "maxTokens" | "temperature" | "topP" | "seed" | "signal" | "presencePenalty" | "frequencyPenalty"
>;

/** How many of the latest generated tokens OpenAI-style penalties look back on (node-llama-cpp's default). */
const PENALTY_WINDOW = 64;

/** A prompt ready to evaluate: its tokens, where it stops, and the grammar that shapes it. */
interface PreparedPrompt extends RenderedPrompt {
  grammar?: LlamaGrammar | undefined;
}

/** A slot held by one request (see leaseSlot). */
interface SlotLease {
  /** The request's signal joined with the slot's own (unload, close). */
  signal: AbortSignal;
  /** Resolves when `signal` fires. */
  aborted: Promise<typeof ABORTED>;
  /** The sequence to free on release, and how to stop the work in flight on it first. */
  hold(sequence: LlamaContextSequence, stop: () => Promise<unknown>): void;
  /** Gives the slot back (idempotent). */
  release(): Promise<void>;
  /** Stops listening to the signal. */
  end(): void;
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

/** A grammar's own end-of-answer texts (node-llama-cpp's JSON grammars end with "\n\n\n\n", which LlamaChat treats as the end). */
function grammarStopTexts(grammar: LlamaGrammar): string[] {
  return grammar.stopGenerationTriggers.flatMap((trigger) => {
    if (typeof trigger === "string") return trigger === "" ? [] : [trigger];
    const values: readonly unknown[] = Array.isArray(trigger) ? trigger : (trigger as LlamaText).values;
    const text = values.every((value) => typeof value === "string") ? values.join("") : "";
    return text === "" ? [] : [text];
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** node-llama-cpp's InsufficientMemoryError (matched by name: the module is imported lazily). */
function isInsufficientMemory(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === "InsufficientMemoryError" || /not enough|insufficient/i.test(error.message))
  );
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
  const gpu = options.gpu === true ? "auto" : (options.gpu ?? false);
  const gpuLayers = options.gpuLayers ?? "auto";
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
  const grammars = new Map<string, Promise<LlamaGrammar>>();
  const digests = new Map<string, { size: number; mtimeMs: number; digest: Promise<string> }>();
  let closed = false;
  let threads: number | undefined = options.threads;

  function ensureOpen(): void {
    if (closed) throw new GbtError("BACKEND_UNREACHABLE", "The embedded backend is closed.");
  }

  async function llama(): Promise<Llama> {
    try {
      const instance = await sharedLlama(gpu);
      if (instance.gpu === false) threads ??= defaultThreads(availableParallelism(), instance.cpuMathCores);
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
        model = await instance.loadModel({
          modelPath: path,
          gpuLayers: instance.gpu === false ? 0 : gpuLayers,
        });
      } catch (error) {
        if (instance.gpu !== false && isInsufficientMemory(error)) {
          const vram = await instance.getVramState().catch(() => undefined);
          throw new GbtError(
            "INVALID_INPUT",
            `Model '${id}' does not fit on the GPU with gpuLayers ${String(gpuLayers)}: ${errorMessage(error)}${vram ? ` (${Math.round(vram.free / 2 ** 20)} of ${Math.round(vram.total / 2 ** 20)} MiB VRAM free)` : ""}.`,
            {
              details: {
                model: id,
                path,
                gpuLayers,
                ...(vram
                  ? {
                      vramFreeMB: Math.round(vram.free / 2 ** 20),
                      vramTotalMB: Math.round(vram.total / 2 ** 20),
                    }
                  : {}),
              },
              hint: "Use --gpu-layers auto (offload what fits), a smaller number of layers, a smaller quantisation, or --gpu off.",
              cause: error,
            },
          );
        }
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
      const totalLayers = model.fileInsights.totalLayers;
      if (instance.gpu !== false && model.gpuLayers < totalLayers) {
        options.onWarning?.(
          `Model '${id}' is partly offloaded: ${model.gpuLayers} of ${totalLayers} layers fit on the GPU (${instance.gpu}); the rest run on the CPU, slower.`,
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
          ...(threads !== undefined ? { threads } : instance.gpu === false ? { threads: 1 } : {}),
        });
        const entry: LoadedModel = {
          id,
          path,
          model,
          context,
          contextSize: Math.min(contextSize, context.contextSize),
          chatWrapper: resolveChatWrapper(model),
          embedQueue: Promise.resolve(),
          closing: new AbortController(),
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

  function renderPrompt(
    entry: LoadedModel,
    chatHistory: ChatHistoryItem[],
    availableFunctions?: ChatModelFunctions,
  ): RenderedPrompt {
    const state = entry.chatWrapper.generateContextState({
      chatHistory,
      ...(availableFunctions ? { availableFunctions, documentFunctionParams: true } : {}),
    });
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

  /** A grammar, compiled once per schema (compiling parses the GBNF in llama.cpp). */
  async function cachedGrammar(key: string, compile: () => Promise<LlamaGrammar>): Promise<LlamaGrammar> {
    let grammar = grammars.get(key);
    if (!grammar) {
      grammar = compile();
      grammar.catch(() => grammars.delete(key));
      if (grammars.size >= GRAMMAR_CACHE_SIZE) grammars.delete(grammars.keys().next().value as string);
      grammars.set(key, grammar);
    }
    return grammar;
  }

  /** The grammar of a response format, if it constrains the answer. */
  async function responseGrammar(request: ChatRequest): Promise<LlamaGrammar | undefined> {
    const format = request.responseFormat;
    if (format === undefined || format.type === "text") return undefined;
    const instance = await llama();
    if (format.type === "json_object") return cachedGrammar("json", () => instance.getGrammarFor("json"));
    return cachedGrammar(`schema:${JSON.stringify(format.schema)}`, () =>
      compileSchemaGrammar(instance, format.schema, "response_format.json_schema.schema"),
    );
  }

  function validateGeneration(request: Pick<ChatRequest, "maxTokens">): void {
    ensureOpen();
    if (request.maxTokens !== undefined && (!Number.isInteger(request.maxTokens) || request.maxTokens < 0)) {
      throw new GbtError(
        "INVALID_INPUT",
        `maxTokens must be a non-negative integer, got ${request.maxTokens}.`,
      );
    }
  }

  /**
   * Takes one of the `capacity` slots (BUSY when none is free) for a request. The lease's signal
   * fires on the request's abort and on unloadModel/close; either frees the slot at once, even if
   * the stream's reader never pulls again: `release` first stops the work in flight registered
   * with `hold` (one token step at most), then frees the sequence's KV cells.
   */
  function leaseSlot(request: Pick<ChatRequest, "model" | "signal">): SlotLease {
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
    let stop: (() => Promise<unknown>) | undefined;
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
    const release = () => {
      releasing ??= (async () => {
        try {
          await stop?.();
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
        void release();
      };
    });
    signal.addEventListener("abort", onAbort, { once: true });
    return {
      signal,
      aborted,
      hold(held, stopHeld) {
        sequence = held;
        stop = stopHeld;
      },
      release,
      end() {
        signal.removeEventListener("abort", onAbort);
      },
    };
  }

  function wrapFailure(error: unknown): unknown {
    if (isGbtError(error)) return error;
    return new GbtError("INTERNAL", `The embedded backend failed while generating: ${errorMessage(error)}`, {
      cause: error,
    });
  }

  /**
   * The one generation loop behind chat and raw completions: a prompt (prepared once the model is
   * loaded and a slot held) is evaluated on a fresh sequence, token by token, with the request's
   * sampling, stop strings and optional grammar. Yields text deltas, then one `done` event.
   */
  async function* generate(
    request: GenerationRequest,
    prepare: (entry: LoadedModel) => Promise<PreparedPrompt>,
    /** Asked after each delta the consumer took: true ends the answer there (a forced call whose JSON is whole). */
    isComplete?: () => boolean,
  ): AsyncGenerator<ChatStreamEvent> {
    validateGeneration(request);
    if (request.signal?.aborted) {
      yield { type: "done", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } };
      return;
    }
    const lease = leaseSlot(request);
    const { signal } = lease;
    try {
      const entry = await loadEntry(request.model);
      const prompt = await prepare(entry);
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
      const completion = new CompletionText(
        entry.model,
        prompt.tokens.slice(-DETOKENIZE_CONTEXT_TOKENS),
        prompt.stopTexts.filter((stop) => stop !== ""),
      );
      const { LlamaGrammarEvaluationState } = await importNodeLlamaCpp();
      const grammarEvaluationState = prompt.grammar
        ? new LlamaGrammarEvaluationState({ model: entry.model, grammar: prompt.grammar })
        : undefined;

      // No await between this check and taking the sequence: an abort after it finds the sequence to free.
      if (signal.aborted) {
        await lease.release();
        yield { type: "done", finishReason: "abort", usage, timings };
        return;
      }
      const sequence = entry.context.getSequence();
      // OpenAI's presence/frequency penalties, over what this answer generated so far.
      const generated: Token[] = [];
      const penalized = (request.presencePenalty ?? 0) !== 0 || (request.frequencyPenalty ?? 0) !== 0;
      const evaluation = sequence.evaluate(prompt.tokens, {
        ...(penalized
          ? {
              repeatPenalty: {
                punishTokens: () => generated.slice(-PENALTY_WINDOW),
                maxPunishTokens: PENALTY_WINDOW,
                penalty: 1,
                frequencyPenalty: request.frequencyPenalty ?? 0,
                presencePenalty: request.presencePenalty ?? 0,
              },
            }
          : {}),
        temperature: request.temperature ?? DEFAULT_EMBEDDED_TEMPERATURE,
        ...(request.topP !== undefined ? { topP: request.topP } : {}),
        seed: request.seed !== undefined ? toUint32Seed(request.seed) : randomInt(2 ** 32),
        ...(grammarEvaluationState ? { grammarEvaluationState } : {}),
        // Seen and counted like any sampled token (llama.cpp's server counts it too); generation then stops.
        yieldEogToken: true,
      });
      lease.hold(sequence, () => evaluation.return());

      // node-llama-cpp's JSON grammars allow whitespace after the value (and ask to trim it): held
      // back until more text follows it, dropped at the end.
      const trimSuffix = prompt.grammar?.trimWhitespaceSuffix === true;
      let heldWhitespace = "";
      const emit = (text: string): string => {
        if (!trimSuffix) return text;
        const all = heldWhitespace + text;
        const kept = all.trimEnd();
        heldWhitespace = all.slice(kept.length);
        return kept;
      };

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
        const step = await Promise.race([next, lease.aborted]);
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
        if (penalized) generated.push(step.value);
        if (entry.model.isEogToken(step.value) || prompt.stopTokens.has(step.value)) {
          account();
          finishReason = "stop";
          break;
        }
        const piece = completion.push(step.value);
        account();
        const text = emit(piece.text);
        if (text !== "") yield { type: "delta", text };
        if (piece.stopped || isComplete?.() === true) finishReason = "stop";
      }
      if (finishReason !== "stop") {
        const rest = emit(completion.flush());
        if (rest !== "") yield { type: "delta", text: rest };
      }
      await lease.release();
      yield { type: "done", finishReason, usage, timings };
    } catch (error) {
      throw wrapFailure(error);
    } finally {
      lease.end();
      await lease.release();
    }
  }

  async function* chatStream(request: ChatRequest): AsyncGenerator<ChatStreamEvent> {
    validateGeneration(request);
    const mode = resolveToolMode(request);
    const formatted = request.responseFormat !== undefined && request.responseFormat.type !== "text";
    if (mode.kind === "auto" && formatted) {
      throw httpError(
        "invalid_value",
        "The embedded backend cannot combine response_format with tool_choice 'auto'; use tool_choice 'required' (or a function name) for a call, or 'none' for formatted text.",
        { param: "response_format" },
      );
    }
    if (mode.kind === "auto") {
      yield* autoToolStream(request, mode.tools);
      return;
    }
    const forced = mode.kind === "forced";
    const call = new ForcedCallStream(0);
    // A forced call ends as soon as its JSON is whole: the grammar would let the model pad it with whitespace.
    const events = generate(
      request,
      async (entry) => {
        let grammar: LlamaGrammar | undefined;
        if (forced) {
          const schema = forcedCallSchema(request, mode.tools);
          const instance = await llama();
          grammar = await cachedGrammar(`call:${JSON.stringify(schema)}`, () =>
            compileSchemaGrammar(instance, schema as Record<string, unknown>, "tools"),
          );
        } else grammar = await responseGrammar(request);
        const note =
          mode.tools.length > 0 ? describeTools(mode.tools, forced ? "forced" : "text") : undefined;
        const prompt = renderPrompt(entry, toChatHistory(request.messages, note));
        return {
          ...prompt,
          grammar,
          // A forced call ends where its grammar ends; the consumer's stop strings would cut its JSON.
          stopTexts: [
            ...(forced ? [] : (request.stop ?? [])),
            ...prompt.stopTexts,
            ...(grammar ? grammarStopTexts(grammar) : []),
          ],
        };
      },
      forced ? () => call.complete : undefined,
    );
    if (!forced) {
      yield* events;
      return;
    }
    for await (const event of events) {
      if (event.type === "delta") yield* call.push(event.text);
      else if (event.type === "done")
        yield {
          ...event,
          finishReason: event.finishReason === "stop" && call.complete ? "tool_calls" : event.finishReason,
        };
    }
  }

  /**
   * `tool_choice: auto`: node-llama-cpp's LlamaChat generates in the model's own function-calling
   * syntax (its chat wrapper documents the functions in the prompt and constrains the call's
   * parameters with their schema). No handler runs: the first calls end the answer, streamed as
   * tool_call events; otherwise the answer is text.
   */
  async function* autoToolStream(
    request: ChatRequest,
    tools: ToolDefinition[],
  ): AsyncGenerator<ChatStreamEvent> {
    if (request.signal?.aborted) {
      yield { type: "done", finishReason: "abort", usage: { promptTokens: 0, completionTokens: 0 } };
      return;
    }
    const functions: ChatModelFunctions = Object.fromEntries(
      tools.map((tool) => [
        tool.name,
        {
          ...(tool.description ? { description: tool.description } : {}),
          params: toolParamsSchema(request, tool),
        },
      ]),
    );
    const lease = leaseSlot(request);
    const { signal } = lease;
    try {
      const entry = await loadEntry(request.model);
      const { LlamaChat } = await importNodeLlamaCpp();
      const history = toChatHistory(request.messages);
      const promptTokens = renderPrompt(entry, history, functions).tokens.length;
      if (promptTokens >= entry.contextSize) throw contextTooSmall(entry, promptTokens);
      const maxTokens = Math.min(
        request.maxTokens ?? Number.POSITIVE_INFINITY,
        entry.contextSize - promptTokens,
      );
      const timings: BackendTimings & { promptMs: number; decodeMs: number; decodeTokens: number } = {
        promptMs: 0,
        decodeMs: 0,
        promptTokens,
        decodeTokens: 0,
        source: EMBEDDED_TIMINGS_SOURCE,
      };
      if (signal.aborted || maxTokens === 0) {
        await lease.release();
        yield {
          type: "done",
          finishReason: signal.aborted ? "abort" : "length",
          usage: { promptTokens, completionTokens: 0 },
          timings,
        };
        return;
      }

      const queue: ChatStreamEvent[] = [];
      let wake: () => void = () => {};
      const woken = () =>
        new Promise<void>((resolveWoken) => {
          wake = resolveWoken;
        });
      let waiting = woken();
      const push = (event: ChatStreamEvent) => {
        queue.push(event);
        wake();
      };
      const callIds = new Map<number, string>();
      const started = performance.now();
      let lastTokenAt: number | undefined;
      const sequence = entry.context.getSequence();
      const chat = new LlamaChat({
        contextSequence: sequence,
        chatWrapper: entry.chatWrapper,
        autoDisposeSequence: false,
      });
      const response = chat.generateResponse(history, {
        functions,
        documentFunctionParams: true,
        ...(request.parallelToolCalls === false ? { maxParallelFunctionCalls: 1 } : {}),
        signal,
        stopOnAbortSignal: true,
        ...(Number.isFinite(maxTokens) ? { maxTokens } : {}),
        temperature: request.temperature ?? DEFAULT_EMBEDDED_TEMPERATURE,
        ...(request.topP !== undefined ? { topP: request.topP } : {}),
        seed: request.seed !== undefined ? toUint32Seed(request.seed) : randomInt(2 ** 32),
        ...(request.stop && request.stop.length > 0
          ? { customStopTriggers: request.stop.filter((stop) => stop !== "") }
          : {}),
        onToken: () => {
          const now = performance.now();
          if (lastTokenAt === undefined) timings.promptMs = now - started;
          else {
            timings.decodeMs += now - lastTokenAt;
            timings.decodeTokens++;
          }
          lastTokenAt = now;
        },
        onTextChunk: (text) => {
          if (text !== "") push({ type: "delta", text });
        },
        onFunctionCallParamsChunk: (chunk) => {
          if (!callIds.has(chunk.callIndex)) {
            const id = newToolCallId();
            callIds.set(chunk.callIndex, id);
            push({ type: "tool_call", index: chunk.callIndex, id, name: chunk.functionName, arguments: "" });
          }
          if (chunk.paramsChunk !== "")
            push({ type: "tool_call", index: chunk.callIndex, arguments: chunk.paramsChunk });
        },
      });
      const settled = response.then(
        () => undefined,
        () => undefined,
      );
      lease.hold(sequence, async () => {
        await settled;
        chat.dispose({ disposeSequence: false });
      });
      let finished = false;
      void settled.then(() => {
        finished = true;
        wake();
      });
      while (!finished || queue.length > 0) {
        if (queue.length === 0) {
          await Promise.race([waiting, lease.aborted]);
          waiting = woken();
          if (signal.aborted && !finished) await settled;
        }
        while (queue.length > 0) yield queue.shift() as ChatStreamEvent;
      }
      const result = await response;
      // Calls whose parameters never streamed (a function without parameters) still come out whole.
      (result.functionCalls ?? []).forEach((functionCall, index) => {
        if (callIds.has(index)) return;
        callIds.set(index, newToolCallId());
        queue.push({
          type: "tool_call",
          index,
          id: callIds.get(index) as string,
          name: functionCall.functionName,
          arguments: functionCall.params === undefined ? "{}" : JSON.stringify(functionCall.params),
        });
      });
      while (queue.length > 0) yield queue.shift() as ChatStreamEvent;
      const completionTokens = sequence.tokenMeter.usedOutputTokens;
      const reason = result.metadata.stopReason;
      const finishReason: FinishReason =
        signal.aborted || reason === "abort"
          ? "abort"
          : callIds.size > 0 || reason === "functionCalls"
            ? "tool_calls"
            : reason === "maxTokens"
              ? "length"
              : "stop";
      await lease.release();
      yield { type: "done", finishReason, usage: { promptTokens, completionTokens }, timings };
    } catch (error) {
      throw wrapFailure(error);
    } finally {
      lease.end();
      await lease.release();
    }
  }

  async function* completeStream(request: CompletionRequest): AsyncGenerator<ChatStreamEvent> {
    yield* generate(request, async (entry) => {
      const tokens = entry.model.tokenize(request.prompt, false);
      const bos = entry.model.tokens.bos;
      if (entry.model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
      return {
        tokens,
        stopTokens: new Set<Token>(),
        stopTexts: (request.stop ?? []).filter((stop) => stop !== ""),
      };
    });
  }

  /** The model's embedding context, created on first use and kept with the model until it unloads. */
  function embeddingContext(entry: LoadedModel): Promise<LlamaEmbeddingContext> {
    entry.embedding ??= entry.model
      .createEmbeddingContext({
        contextSize: entry.contextSize,
        ...(threads !== undefined ? { threads } : {}),
      })
      .catch((error: unknown) => {
        entry.embedding = undefined;
        throw new GbtError(
          "INVALID_INPUT",
          `llama.cpp could not create an embedding context for model '${entry.id}': ${errorMessage(error)}`,
          { details: { model: entry.id }, cause: error },
        );
      });
    return entry.embedding;
  }

  async function embed(request: EmbedRequest): Promise<EmbedResult> {
    ensureOpen();
    if (request.input.length === 0)
      throw httpError("invalid_value", "input must hold at least one text to embed.", { param: "input" });
    const emptyAt = request.input.indexOf("");
    if (emptyAt >= 0)
      throw httpError("invalid_value", `input[${emptyAt}] is empty; every input must hold text.`, {
        param: "input",
      });
    const entry = await loadEntry(request.model);
    const dimensionsOfModel = entry.model.embeddingVectorSize;
    const { dimensions } = request;
    if (
      dimensions !== undefined &&
      (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > dimensionsOfModel)
    ) {
      throw httpError(
        "invalid_value",
        `dimensions must be an integer from 1 to ${dimensionsOfModel} (the length of model '${entry.id}''s embeddings), got ${dimensions}.`,
        { param: "dimensions" },
      );
    }
    // One embedding request at a time per model (its context has one sequence); unload waits for it.
    const run = entry.embedQueue.then(async () => {
      const context = await embeddingContext(entry);
      const signal = request.signal
        ? AbortSignal.any([request.signal, entry.closing.signal])
        : entry.closing.signal;
      const embeddings: number[][] = [];
      let promptTokens = 0;
      for (const text of request.input) {
        if (signal.aborted)
          throw new GbtError("INTERRUPTED", "The embedding request was aborted.", { cause: signal.reason });
        const length = context.calculateInputLength(text);
        if (length >= entry.contextSize) {
          throw new GbtError(
            "CONTEXT_LENGTH_EXCEEDED",
            `An input is ${length} tokens; model '${entry.id}' embeds at most ${entry.contextSize - 1}.`,
            { details: { model: entry.id, inputTokens: length, contextSize: entry.contextSize } },
          );
        }
        promptTokens += length;
        const embedding = await context.getEmbeddingFor(text);
        embeddings.push(normalizeEmbedding(embedding.vector, dimensions));
      }
      return { embeddings, promptTokens };
    });
    entry.embedQueue = run.catch(() => {});
    try {
      return await run;
    } catch (error) {
      if (isGbtError(error)) throw error;
      throw new GbtError("INTERNAL", `The embedded backend failed while embedding: ${errorMessage(error)}`, {
        cause: error,
      });
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

  /** What the GGUF's header says without loading the model (read once per file version). */
  async function ggufFacts(path: string): Promise<{ contextLength?: number; embeddingLength?: number }> {
    try {
      const { readGgufFileInfo } = await importNodeLlamaCpp();
      const info = await readGgufFileInfo(path, { readTensorInfo: false });
      const metadata = info.architectureMetadata as { context_length?: unknown; embedding_length?: unknown };
      return {
        ...(typeof metadata.context_length === "number" ? { contextLength: metadata.context_length } : {}),
        ...(typeof metadata.embedding_length === "number"
          ? { embeddingLength: metadata.embedding_length }
          : {}),
      };
    } catch {
      return {};
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
      const facts = entry ? {} : await ggufFacts(path);
      const trained = facts.contextLength;
      const contextLength =
        entry?.contextSize ??
        options.contextSize ??
        (trained === undefined ? undefined : Math.min(trained, DEFAULT_EMBEDDED_CONTEXT_CAP));
      const embeddingDimensions = entry?.model.embeddingVectorSize ?? facts.embeddingLength;
      const capabilities: ModelCapabilities = {
        chat: true,
        tools: true,
        jsonSchema: true,
        embeddings: true,
        vision: false,
        logprobs: false,
        completions: true,
        ...(contextLength === undefined ? {} : { contextLength }),
        ...(embeddingDimensions === undefined ? {} : { embeddingDimensions }),
      };
      models.push({
        id,
        digest: await fileDigest(path, info.size, info.mtimeMs),
        sizeBytes: info.size,
        ...(contextLength === undefined ? {} : { contextLength }),
        details: {
          path,
          loaded: entry !== undefined,
          format: "gguf",
          // The offload actually used, once loaded: benchmark records carry it.
          ...(entry
            ? { gpuLayers: entry.model.gpuLayers, totalLayers: entry.model.fileInsights.totalLayers }
            : {}),
        },
        capabilities,
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
        detail: `${instance.buildType} binary, ${instance.gpu === false ? "CPU only" : `GPU: ${instance.gpu}`}, ${threads ?? "default"} threads, ${loaded.size} model(s) loaded; ${instance.systemInfo.trim()}`,
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
    entry.closing.abort(new Error(`model '${id}' unloaded`));
    await entry.embedQueue;
    const embedding = await entry.embedding?.catch(() => undefined);
    await embedding?.dispose();
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
    completeStream,
    embed,
    async countPromptTokens(request) {
      ensureOpen();
      const entry = await loadEntry(request.model);
      return renderPrompt(entry, toChatHistory(request.messages)).tokens.length;
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
