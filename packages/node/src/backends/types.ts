/**
 * The inference backend interface every adapter implements (embedded llama.cpp, Ollama,
 * OpenAI-compatible servers). Token counts and timings are the backend's own; nothing here
 * estimates tokens from text.
 */

export type BackendKind = "embedded" | "ollama" | "openai";

/** A JSON Schema as the consumer sent it (tool parameters, response_format.json_schema.schema). */
export type JsonSchema = Record<string, unknown>;

/** A function the model may call (OpenAI's `tools[].function`). */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object; absent: any object. */
  parameters?: JsonSchema;
  strict?: boolean;
}

/**
 * Which tool calls the model must make: `auto` (text or calls, the model decides), `none` (text
 * only; tools are context), `required` (at least one call), or one named function.
 */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** A call the model made (or, in a request's history, made earlier). */
export interface ToolCall {
  /** `call_…`, unique within the answer. */
  id: string;
  name: string;
  /** The arguments as JSON text, as OpenAI carries them. */
  arguments: string;
}

/** An image part of a user message: an `https://` URL or a `data:image/…;base64,` URL. */
export interface ImagePart {
  url: string;
  detail?: "auto" | "low" | "high";
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** An assistant turn's calls (its `content` may be ""). */
  toolCalls?: ToolCall[];
  /** A `tool` message: the call it answers. */
  toolCallId?: string;
  /** A `tool` message: the function's name, when known (from the matching call). */
  name?: string;
  /** A user message's images, in order after its text (vision models only). */
  images?: ImagePart[];
}

/** How the answer's text must be shaped (OpenAI's `response_format`). */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: JsonSchema; strict?: boolean; description?: string };

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
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Functions the model may call; absent or empty: none. */
  tools?: ToolDefinition[];
  /** Default `auto` when tools are given. */
  toolChoice?: ToolChoice;
  /** Whether more than one call may come in one answer (default true, as OpenAI's). */
  parallelToolCalls?: boolean;
  /** Default text. json_object / json_schema are enforced (a grammar on the embedded backend). */
  responseFormat?: ResponseFormat;
  /** Per-token log-probabilities, on backends that have them (`Capabilities.logprobs`). */
  logprobs?: boolean;
  topLogprobs?: number;
  signal?: AbortSignal;
}

/** A raw text completion (`POST /v1/completions`): the prompt as it is, no chat template. */
export interface CompletionRequest
  extends Pick<
    ChatRequest,
    | "model"
    | "maxTokens"
    | "temperature"
    | "topP"
    | "seed"
    | "stop"
    | "presencePenalty"
    | "frequencyPenalty"
    | "signal"
  > {
  prompt: string;
}

/** `POST /v1/embeddings`: one vector per input, in order. */
export interface EmbedRequest {
  model: string;
  input: string[];
  /** Truncate (and re-normalise) to this many dimensions, where the model allows (Capabilities.embeddingDimensions). */
  dimensions?: number;
  signal?: AbortSignal;
}

export interface EmbedResult {
  embeddings: number[][];
  /** Tokens of all inputs, as the backend counted them (what embeddings bill). */
  promptTokens: number;
}

/**
 * What a model can do on this backend: advertised per model in the node's registration (signed)
 * and used by the gateway to route a request only where it can be honoured.
 */
export interface ModelCapabilities {
  /** Chat completions (false for embedding-only models). */
  chat: boolean;
  /** Function calling (`tools`, `tool_choice`, tool messages). */
  tools: boolean;
  /** `response_format` json_object and json_schema, enforced. */
  jsonSchema: boolean;
  /** `POST /v1/embeddings`. */
  embeddings: boolean;
  /** Image content parts. */
  vision: boolean;
  /** `logprobs` / `top_logprobs`. */
  logprobs: boolean;
  /** `POST /v1/completions` (a raw prompt). */
  completions: boolean;
  /** The context the node serves the model with, in tokens, when known. */
  contextLength?: number;
  /** The embedding vector's length, when known. */
  embeddingDimensions?: number;
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

export type FinishReason = "stop" | "length" | "abort" | "tool_calls";

/**
 * One streamed piece of a completion. The final event carries usage and timings. A tool call
 * streams as OpenAI's does: its first event carries `index`, `id` and `name` (and maybe the first
 * fragment of the arguments), later ones only `index` and further fragments.
 */
export type ChatStreamEvent =
  | { type: "delta"; text: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; arguments: string }
  | {
      type: "done";
      finishReason: FinishReason;
      usage: Usage;
      timings?: BackendTimings;
      /** The counts are the node's estimate: the backend reported none. */
      usageEstimated?: boolean;
    };

export interface ChatResult {
  text: string;
  /** Calls the model made (finishReason `tool_calls`). */
  toolCalls?: ToolCall[];
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
  /** What the model can do here; absent: chat only (no tools, structured output, embeddings…). */
  capabilities?: ModelCapabilities;
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
  /** A raw-prompt completion (`/v1/completions`), on backends with `Capabilities.completions`. */
  completeStream?(request: CompletionRequest): AsyncIterable<ChatStreamEvent>;
  /** Embeddings, on backends with `Capabilities.embeddings` for the model. */
  embed?(request: EmbedRequest): Promise<EmbedResult>;
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

/**
 * One event of a relayed stream: its JSON text exactly as the server sent it (forwarded as it is),
 * and the object, parsed only when asked for (the node reads the usage and finish reason).
 */
export interface RelayedEvent {
  readonly data: string;
  json(): Record<string, unknown>;
}

/** The pass-through of a backend that speaks the OpenAI API (see Backend.relay). */
export interface ChatRelay {
  /** A whole completion: the server's answer object as it sent it. */
  chat(body: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** A stream: the server's events as it sent them (usage asked for, in the last one). */
  chatStream(body: Record<string, unknown>, signal: AbortSignal): AsyncIterable<RelayedEvent>;
  /** `POST /v1/completions`, whole: the server's answer as it sent it. */
  completions(body: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** `POST /v1/completions`, streamed: the server's events as it sent them (usage asked for). */
  completionsStream(body: Record<string, unknown>, signal: AbortSignal): AsyncIterable<RelayedEvent>;
  /** `POST /v1/embeddings`: the server's answer as it sent it (encoding_format kept as the consumer asked). */
  embeddings(body: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>>;
}

/** Adds a streamed tool-call event to the calls collected so far (by the event's index). */
export function addToolCallEvent(
  calls: ToolCall[],
  event: Extract<ChatStreamEvent, { type: "tool_call" }>,
): void {
  let call = calls[event.index];
  if (call === undefined) {
    call = { id: "", name: "", arguments: "" };
    calls[event.index] = call;
  }
  if (event.id !== undefined) call.id = event.id;
  if (event.name !== undefined) call.name = event.name;
  call.arguments += event.arguments;
}

/** The sampling fields a request sets, under the OpenAI API's names (only those set). */
export function openAISampling(request: ChatRequest | CompletionRequest) {
  return {
    ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.topP !== undefined ? { top_p: request.topP } : {}),
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(request.stop !== undefined && request.stop.length > 0 ? { stop: request.stop } : {}),
    ...(request.presencePenalty !== undefined ? { presence_penalty: request.presencePenalty } : {}),
    ...(request.frequencyPenalty !== undefined ? { frequency_penalty: request.frequencyPenalty } : {}),
  };
}

/** Collects a stream into a whole result; shared by adapters whose whole call is a drained stream. */
export async function collectChat(stream: AsyncIterable<ChatStreamEvent>): Promise<ChatResult> {
  let text = "";
  const calls: ToolCall[] = [];
  for await (const event of stream) {
    if (event.type === "delta") text += event.text;
    else if (event.type === "tool_call") addToolCallEvent(calls, event);
    else
      return {
        text,
        ...(calls.length > 0 ? { toolCalls: calls } : {}),
        finishReason: event.finishReason,
        usage: event.usage,
        ...(event.timings ? { timings: event.timings } : {}),
      };
  }
  throw new Error("backend stream ended without a final event");
}
