/**
 * The inference backend interface every adapter implements (embedded llama.cpp, Ollama,
 * OpenAI-compatible servers). Token counts and timings are the backend's own; nothing here
 * estimates tokens from text.
 */

export type BackendKind = "embedded" | "ollama" | "openai";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  /** Upper bound on generated tokens; the backend's default when absent. */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  /** Seed for reproducible sampling, where the backend supports it. */
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** Durations measured by the backend itself (not by our clock). */
export interface BackendTimings {
  /** Prompt processing (prefill) time in ms, as the backend reports it. */
  promptMs?: number;
  /** Generation (decode) time in ms, as the backend reports it. */
  decodeMs?: number;
  /** Tokens the backend counted for those durations. */
  promptTokens?: number;
  decodeTokens?: number;
  /** Where the numbers came from, e.g. "ollama:eval_duration" or "llama.cpp:timings". */
  source: string;
}

export type FinishReason = "stop" | "length" | "abort";

/** One streamed piece of a completion. The final event carries usage and timings. */
export type ChatStreamEvent =
  | { type: "delta"; text: string }
  | { type: "done"; finishReason: FinishReason; usage: Usage; timings?: BackendTimings };

export interface ChatResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  timings?: BackendTimings;
}

export interface ModelInfo {
  /** The id clients send as `model`. */
  id: string;
  /** sha256 of the GGUF file, or the backend's own digest (Ollama). */
  digest?: string;
  sizeBytes?: number;
  contextLength?: number;
  /** Free-form details (family, quantization, path…). */
  details?: Record<string, unknown>;
}

export interface BackendHealth {
  ok: boolean;
  /** Version of the backend when it reports one (llama.cpp build, Ollama version…). */
  version?: string;
  detail?: string;
  latencyMs?: number;
}

export interface PullProgress {
  status: string;
  completedBytes?: number;
  totalBytes?: number;
}

export interface Backend {
  readonly kind: BackendKind;
  /** Human-readable location: "in-process", a URL… */
  readonly location: string;
  health(signal?: AbortSignal): Promise<BackendHealth>;
  listModels(signal?: AbortSignal): Promise<ModelInfo[]>;
  /** Streams a completion; aborting `request.signal` stops generation and frees the slot. */
  chatStream(request: ChatRequest): AsyncIterable<ChatStreamEvent>;
  chat(request: ChatRequest): Promise<ChatResult>;
  /**
   * The whole OpenAI request, passed through as the consumer sent it (backends that speak the
   * OpenAI API themselves): every field reaches the server (tools, response_format, logprobs,
   * images…), and its answer comes back as it is. Present, the node relays instead of
   * re-serialising, so the API is as complete as the backend's.
   */
  relay?: ChatRelay;
  /** Counts tokens of a chat as the backend would see it, when the backend can (context checks). */
  countPromptTokens?(request: Pick<ChatRequest, "model" | "messages">): Promise<number>;
  pullModel?(
    model: string,
    onProgress?: (progress: PullProgress) => void,
    signal?: AbortSignal,
  ): Promise<void>;
  removeModel?(model: string): Promise<void>;
  loadModel?(model: string): Promise<void>;
  unloadModel?(model: string): Promise<void>;
  /** Serves a local model file under `id` from now on (backends that serve files: embedded). */
  addModelFile?(id: string, path: string): void;
  /** Stops serving `id`, unloading it first; the file stays where it is. */
  forgetModel?(id: string): Promise<void>;
  /** Releases everything the backend holds (models, contexts, sockets). */
  close(): Promise<void>;
}

/** The pass-through of a backend that speaks the OpenAI API (see Backend.relay). */
export interface ChatRelay {
  /** A whole completion: the server's answer object as it sent it. */
  chat(body: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** A stream: the server's chunk objects as it sent them (usage asked for, in the last chunk). */
  chatStream(body: Record<string, unknown>, signal: AbortSignal): AsyncIterable<Record<string, unknown>>;
}

/** Collects a stream into a whole result; shared by adapters whose whole call is a drained stream. */
export async function collectChat(stream: AsyncIterable<ChatStreamEvent>): Promise<ChatResult> {
  let text = "";
  for await (const event of stream) {
    if (event.type === "delta") text += event.text;
    else
      return {
        text,
        finishReason: event.finishReason,
        usage: event.usage,
        ...(event.timings ? { timings: event.timings } : {}),
      };
  }
  throw new Error("backend stream ended without a final event");
}
