/**
 * A local stand-in for Ollama's HTTP API, for tests on machines where Ollama cannot run. It
 * answers the routes the official `ollama` client calls with Ollama's shapes and status codes:
 * NDJSON streams that end in a `done: true` chunk carrying Ollama's counters and nanosecond
 * durations (zero values left out, as Ollama's `omitempty` does), pull progress per layer,
 * `{"error": …}` bodies, names without a tag read as `:latest`, and keep_alive loading and
 * unloading. Token timing is scripted, and the durations it reports are the scripted ones, so a
 * test knows them exactly. Every exchange is logged, including whether the client hung up.
 *
 * It also plays a model's side of tools, structured output, vision and embeddings, with the
 * capability checks Ollama makes (`/api/show` lists each model's capabilities; a chat with tools,
 * or with images, on a model without them is a 400): a chat with tools whose last message is the
 * user's is answered with a call to the first tools (arguments built from each tool's schema,
 * answered whole in one chunk, as Ollama does); a `format` is answered with JSON that fits it
 * (simple schemas: objects, arrays, enums, strings, numbers, booleans); `/api/embed` answers
 * deterministic unit vectors computed from each input's text.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeOllamaModelDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

/** A model the fake has installed, or can pull. */
export interface FakeOllamaModel {
  /** Name as `/api/tags` lists it; a name without a tag gets `:latest`. */
  name: string;
  /** Layer sizes in bytes; the model's size is their sum (default: one layer of 4 MiB). */
  layers?: number[];
  details?: Partial<FakeOllamaModelDetails>;
  /**
   * What `/api/show` lists (default ["completion"]): "tools", "vision", "embedding"… An empty
   * list is left out of the answer, as Ollama's `omitempty` does (and Ollama before 0.6 did).
   */
  capabilities?: string[];
  /** `<family>.context_length` in model_info (default 2048); embed inputs beyond it fail without truncation. */
  contextLength?: number;
  /** `<family>.embedding_length` in model_info, and the length of `/api/embed` vectors (default 8). */
  embeddingLength?: number;
}

export interface FakeOllamaOptions {
  /** Installed models (default: `tiny:latest`). */
  models?: Array<string | FakeOllamaModel>;
  /** Models `/api/pull` can fetch; any other name fails like Ollama's registry does. */
  registry?: Array<string | FakeOllamaModel>;
  /** Pieces generated, one token each, then end of sequence (default: "Hello", ",", " world", "!"). */
  tokens?: string[];
  /** Prompt evaluation time in ms, slept before the first token and reported as prompt_eval_duration. */
  promptMs?: number;
  /** Time per generated token in ms; eval_duration is tokenMs × eval_count. */
  tokenMs?: number;
  /** Load time in ms for a model that is not loaded yet, reported as load_duration. */
  loadMs?: number;
  /** Prompt tokens of a chat (default: per message, ceil(characters / 4) + 4 for the template). */
  countPromptTokens?: (messages: Array<{ role: string; content: string }>) => number;
  /** Answer of `/api/version` (default "0.12.6"). */
  version?: string;
  /** Progress messages per pulled layer (default 4) and the pause between them in ms (default 0). */
  pullSteps?: number;
  pullStepMs?: number;
  /** Drop the connection after this many generated tokens, as when Ollama's model runner crashes. */
  failAfterTokens?: number;
  /** Calls in an answer to a chat with tools: to the first this many tools (default 1). */
  toolCallsPerAnswer?: number;
  /** Whether answered calls carry an `id`, as Ollama 0.12 and later do (default true). */
  toolCallIds?: boolean;
  /** Models whose `/api/show` fails with a 500. */
  failShow?: string[];
}

/** One exchange as the fake saw it. */
export interface FakeOllamaRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or undefined when there was none (or it was not JSON). */
  body: unknown;
  /** HTTP status answered. */
  status?: number;
  /** Every JSON object written: the NDJSON lines of a stream, or the one body. */
  sent: unknown[];
  /** "completed" when the whole answer was written; "disconnected" when the client hung up first. */
  ended: Promise<"completed" | "disconnected">;
}

export interface FakeOllama {
  /** Base URL, e.g. http://127.0.0.1:PORT (what `new Ollama({host})` takes). */
  url: string;
  /** Every exchange, in order of arrival. */
  readonly requests: FakeOllamaRequest[];
  /** Names of installed models. */
  installed(): string[];
  /** Names of models loaded now (what `/api/ps` lists). */
  loaded(): string[];
  close(): Promise<void>;
}

interface Installed {
  name: string;
  digest: string;
  size: number;
  details: FakeOllamaModelDetails;
  modifiedAt: string;
  capabilities: string[];
  contextLength: number;
  embeddingLength: number;
}

/** A message of a chat as the fake reads it. */
interface ChatTurn {
  role: string;
  content: string;
  images: unknown[];
}

/** Ollama answers this expiry for a model kept loaded forever (keep_alive < 0). */
const FOREVER = Date.UTC(2318, 0, 1);
const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;

const sleep = (ms: number) => new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : resolve()));

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Ollama's name rule: a name without a tag means the `latest` tag. */
export function ollamaModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf("/") + 1);
  return lastSegment.includes(":") ? name : `${name}:latest`;
}

function defaultCountPromptTokens(messages: Array<{ role: string; content: string }>): number {
  return messages.reduce((sum, message) => sum + Math.ceil(message.content.length / 4) + 4, 0);
}

/** keep_alive as Ollama reads it: seconds as a number, or a Go duration ("5m", "1h30m", "300ms"). */
function keepAliveMs(value: unknown): number {
  if (value === undefined || value === null || value === "") return DEFAULT_KEEP_ALIVE_MS;
  if (typeof value === "number") return value < 0 ? Number.POSITIVE_INFINITY : value * 1000;
  if (typeof value !== "string") return DEFAULT_KEEP_ALIVE_MS;
  if (/^-?\d+(\.\d+)?$/.test(value)) return keepAliveMs(Number(value));
  if (value.startsWith("-")) return Number.POSITIVE_INFINITY;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (units[match[2] ?? "s"] ?? 1000);
  }
  return total;
}

/** Ollama's `omitempty`: zero counters and durations are left out of the JSON. */
function metrics(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== 0));
}

const msToNs = (ms: number) => Math.round(ms * 1e6);

const isFilled = (value: unknown) =>
  value !== undefined && value !== null && value !== "" && !(Array.isArray(value) && value.length === 0);

const isBase64 = (text: string) => text.length % 4 !== 1 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);

/** Ollama's call ids: `call_` and eight lowercase letters or digits. */
function toolCallId(): string {
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789";
  return `call_${Array.from({ length: 8 }, () => letters[Math.floor(Math.random() * letters.length)]).join("")}`;
}

/** Splits a text into model-sized pieces of four characters. */
function chunked(text: string): string[] {
  return Array.from({ length: Math.ceil(text.length / 4) }, (_, i) => text.slice(i * 4, i * 4 + 4));
}

/**
 * A value that fits a simple JSON schema (what a model constrained by it would write): the first
 * enum value or the const, every property of an object, one item of an array (or minItems), the
 * key's name as a string, the minimum (or 1) as a number, true.
 */
export function exampleOf(schema: unknown, key: string): unknown {
  if (typeof schema !== "object" || schema === null) return key;
  const s = schema as Record<string, unknown>;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const union of ["anyOf", "oneOf", "allOf"]) {
    const options = s[union];
    if (Array.isArray(options) && options.length > 0) return exampleOf(options[0], key);
  }
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== "null") ?? "null") : s.type;
  const properties =
    typeof s.properties === "object" && s.properties !== null
      ? (s.properties as Record<string, unknown>)
      : undefined;
  if (type === "object" || (type === undefined && properties !== undefined)) {
    return Object.fromEntries(
      Object.entries(properties ?? {}).map(([name, sub]) => [name, exampleOf(sub, name)]),
    );
  }
  switch (type) {
    case "array": {
      const count = typeof s.minItems === "number" && s.minItems > 0 ? s.minItems : 1;
      return Array.from({ length: count }, () => exampleOf(s.items, key));
    }
    case "integer":
    case "number": {
      const low =
        typeof s.minimum === "number"
          ? s.minimum
          : typeof s.exclusiveMinimum === "number"
            ? s.exclusiveMinimum + 1
            : 1;
      const value = typeof s.maximum === "number" ? Math.min(low, s.maximum) : low;
      return type === "integer" ? Math.ceil(value) : value;
    }
    case "boolean":
      return true;
    case "null":
      return null;
    default: {
      const min = typeof s.minLength === "number" ? s.minLength : 0;
      const text = key.padEnd(min, "x");
      return typeof s.maxLength === "number" ? text.slice(0, s.maxLength) : text;
    }
  }
}

/** Tokens of an embed input, as the fake counts them (a quarter of its characters, at least one). */
const embedTokenCount = (text: string) => Math.max(1, Math.ceil(text.length / 4));

function unit(vector: number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0)) || 1;
  return vector.map((value) => value / norm);
}

/** A deterministic unit vector of `length` from a text's sha256 chain (Ollama normalises its vectors). */
export function textVector(text: string, length: number): number[] {
  const values: number[] = [];
  for (let block = 0; values.length < length; block++) {
    const digest = createHash("sha256").update(`${block}:${text}`).digest();
    for (let i = 0; i + 1 < digest.length && values.length < length; i += 2) {
      values.push(digest.readUInt16BE(i) / 32767.5 - 1);
    }
  }
  return unit(values);
}

/**
 * Starts the fake on a loopback port chosen by the OS.
 *
 * Generation emits the scripted `tokens` in order and then stops as at end of sequence
 * (done_reason "stop"); `options.num_predict` cuts it short (done_reason "length"); a string in
 * `options.stop` ends it before that string. A client that hangs up stops generation.
 */
export async function startFakeOllama(options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  const tokens = options.tokens ?? ["Hello", ",", " world", "!"];
  const countPromptTokens = options.countPromptTokens ?? defaultCountPromptTokens;
  const version = options.version ?? "0.12.6";
  const pullSteps = Math.max(1, options.pullSteps ?? 4);
  const requests: FakeOllamaRequest[] = [];

  const toModel = (entry: string | FakeOllamaModel): FakeOllamaModel =>
    typeof entry === "string" ? { name: entry } : entry;
  const layersOf = (model: FakeOllamaModel) => model.layers ?? [4 * 1024 * 1024];
  const install = (model: FakeOllamaModel): Installed => {
    const name = ollamaModelName(model.name);
    return {
      name,
      digest: sha256(`manifest:${name}`),
      size: layersOf(model).reduce((sum, size) => sum + size, 0),
      details: {
        parent_model: "",
        format: "gguf",
        family: "llama",
        families: ["llama"],
        parameter_size: "1M",
        quantization_level: "F16",
        ...model.details,
      },
      modifiedAt: new Date().toISOString(),
      capabilities: model.capabilities ?? ["completion"],
      contextLength: model.contextLength ?? 2048,
      embeddingLength: model.embeddingLength ?? 8,
    };
  };

  const installed = new Map<string, Installed>();
  for (const entry of options.models ?? ["tiny"]) {
    const model = install(toModel(entry));
    installed.set(model.name, model);
  }
  const registry = new Map<string, FakeOllamaModel>();
  for (const entry of options.registry ?? []) {
    const model = toModel(entry);
    registry.set(ollamaModelName(model.name), model);
  }
  /** Loaded model name → expiry (ms since epoch, or Infinity). */
  const loaded = new Map<string, number>();
  const loadedNow = () => {
    const now = Date.now();
    for (const [name, expiry] of loaded) if (expiry <= now) loaded.delete(name);
    return [...loaded.keys()];
  };

  /** Loads a model as a request names it; returns the load time to report, in ms. */
  async function ensureLoaded(name: string, keepAlive: unknown): Promise<number> {
    const wasLoaded = loadedNow().includes(name);
    if (!wasLoaded) await sleep(options.loadMs ?? 0);
    const keep = keepAliveMs(keepAlive);
    if (keep === 0) loaded.delete(name);
    else loaded.set(name, Date.now() + keep);
    return wasLoaded ? 0 : (options.loadMs ?? 0);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify({ error: String(error) }));
      } else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    let resolveEnded: (outcome: "completed" | "disconnected") => void = () => undefined;
    const entry: FakeOllamaRequest = {
      method: req.method ?? "GET",
      path: (req.url ?? "/").split("?")[0] ?? "/",
      headers: req.headers,
      body,
      sent: [],
      ended: new Promise((resolve) => {
        resolveEnded = resolve;
      }),
    };
    requests.push(entry);
    const reply = replyTo(res, entry);
    res.on("close", () => resolveEnded(res.writableFinished ? "completed" : "disconnected"));

    const { method, path } = entry;
    const routes: Record<string, string> = {
      "/": "GET",
      "/api/version": "GET",
      "/api/tags": "GET",
      "/api/ps": "GET",
      "/api/chat": "POST",
      "/api/generate": "POST",
      "/api/embed": "POST",
      "/api/show": "POST",
      "/api/pull": "POST",
      "/api/delete": "DELETE",
    };
    const expected = routes[path];
    if (expected === undefined) return reply.text(404, "404 page not found");
    if (path === "/" && method === "HEAD") return reply.text(200, "");
    if (method !== expected) return reply.text(405, "405 method not allowed");
    if (badJson) return reply.json(400, { error: "invalid character in request body" });
    const request = (body ?? {}) as Record<string, unknown>;

    switch (path) {
      case "/":
        return reply.text(200, "Ollama is running");
      case "/api/version":
        return reply.json(200, { version });
      case "/api/tags":
        return reply.json(200, {
          models: [...installed.values()].map((model) => ({
            name: model.name,
            model: model.name,
            modified_at: model.modifiedAt,
            size: model.size,
            digest: model.digest,
            details: model.details,
          })),
        });
      case "/api/ps":
        return reply.json(200, {
          models: loadedNow().flatMap((name) => {
            const model = installed.get(name);
            const expiry = loaded.get(name) ?? 0;
            if (!model) return [];
            return [
              {
                name,
                model: name,
                size: model.size,
                digest: model.digest,
                details: model.details,
                expires_at: new Date(Number.isFinite(expiry) ? expiry : FOREVER).toISOString(),
                size_vram: 0,
              },
            ];
          }),
        });
      case "/api/delete": {
        const given = typeof request.model === "string" ? request.model : request.name;
        if (typeof given !== "string" || given === "") return reply.json(400, { error: "model is required" });
        const name = ollamaModelName(given);
        if (!installed.has(name)) return reply.json(404, { error: `model '${given}' not found` });
        installed.delete(name);
        loaded.delete(name);
        return reply.empty(200);
      }
      case "/api/pull":
        return pull(request, reply);
      case "/api/show":
        return show(request, reply);
      case "/api/embed":
        return embed(request, reply);
      case "/api/chat":
      case "/api/generate":
        return generate(path === "/api/chat" ? "chat" : "generate", request, reply);
    }
  }

  async function show(request: Record<string, unknown>, reply: Reply): Promise<void> {
    const given = typeof request.model === "string" ? request.model : request.name;
    if (typeof given !== "string" || given === "") return reply.json(400, { error: "model is required" });
    const model = installed.get(ollamaModelName(given));
    if (!model) return reply.json(404, { error: `model '${given}' not found` });
    if ((options.failShow ?? []).some((name) => ollamaModelName(name) === model.name)) {
      return reply.json(500, { error: "failed to read the model's manifest" });
    }
    const arch = model.details.family;
    return reply.json(200, {
      modelfile: `# Modelfile generated by "ollama show"\nFROM ${model.name}\n`,
      parameters: 'stop                           "<|im_end|>"',
      template: "{{ .Prompt }}",
      details: model.details,
      model_info: {
        "general.architecture": arch,
        "general.parameter_count": 1_000_000,
        [`${arch}.context_length`]: model.contextLength,
        [`${arch}.embedding_length`]: model.embeddingLength,
        [`${arch}.block_count`]: 2,
      },
      ...(model.capabilities.length > 0 ? { capabilities: model.capabilities } : {}),
      modified_at: model.modifiedAt,
    });
  }

  async function embed(request: Record<string, unknown>, reply: Reply): Promise<void> {
    const started = performance.now();
    const given = request.model;
    if (typeof given !== "string" || given === "") return reply.json(400, { error: "model is required" });
    let inputs: string[];
    if (typeof request.input === "string") inputs = request.input === "" ? [] : [request.input];
    else if (Array.isArray(request.input) && request.input.every((item) => typeof item === "string")) {
      inputs = request.input;
    } else if (request.input === undefined || request.input === null) inputs = [];
    else return reply.json(400, { error: "invalid input type" });
    const name = ollamaModelName(given);
    const model = installed.get(name);
    if (!model) return reply.json(404, { error: `model '${given}' not found` });
    if (!model.capabilities.includes("embedding")) {
      return reply.json(400, { error: `${name} does not support embeddings` });
    }
    const loadMs = await ensureLoaded(name, request.keep_alive);
    if (inputs.length === 0) return reply.json(200, { model: given, embeddings: [] });
    const counts = inputs.map(embedTokenCount);
    if (request.truncate === false && counts.some((count) => count > model.contextLength)) {
      return reply.json(400, { error: "the input length exceeds the context length" });
    }
    const dimensions = typeof request.dimensions === "number" ? request.dimensions : 0;
    const embeddings = inputs.map((text) => {
      const vector = textVector(text, model.embeddingLength);
      return dimensions > 0 && dimensions < vector.length ? unit(vector.slice(0, dimensions)) : vector;
    });
    return reply.json(200, {
      model: given,
      embeddings,
      ...metrics({
        total_duration: msToNs(performance.now() - started),
        load_duration: msToNs(loadMs),
        prompt_eval_count: counts.reduce((sum, count) => sum + count, 0),
      }),
    });
  }

  async function pull(request: Record<string, unknown>, reply: Reply): Promise<void> {
    const given = typeof request.model === "string" ? request.model : request.name;
    if (typeof given !== "string" || given === "") return reply.json(400, { error: "model is required" });
    const name = ollamaModelName(given);
    // Without streaming, Ollama runs the same steps and answers only the outcome.
    const streaming = request.stream !== false;
    const stream = streaming ? reply.stream() : undefined;
    const progress = (value: unknown) => (stream ? stream.write(value) : !reply.gone());
    const stepMs = options.pullStepMs ?? 0;

    if (!progress({ status: "pulling manifest" })) return;
    await sleep(stepMs);
    const model = registry.get(name);
    if (!model) {
      const error = { error: "pull model manifest: file does not exist" };
      return stream ? stream.end(error) : reply.json(500, error);
    }
    for (const [index, total] of layersOf(model).entries()) {
      const hex = sha256(`layer:${name}:${index}`);
      const status = `pulling ${hex.slice(0, 12)}`;
      if (!progress({ status, digest: `sha256:${hex}`, total })) return;
      for (let step = 1; step <= pullSteps; step++) {
        await sleep(stepMs);
        const completed = Math.round((total * step) / pullSteps);
        if (!progress({ status, digest: `sha256:${hex}`, total, completed })) return;
      }
    }
    for (const status of ["verifying sha256 digest", "writing manifest"]) {
      if (!progress({ status })) return;
      await sleep(stepMs);
    }
    installed.set(name, install({ ...model, name }));
    return stream ? stream.end({ status: "success" }) : reply.json(200, { status: "success" });
  }

  async function generate(
    kind: "chat" | "generate",
    request: Record<string, unknown>,
    reply: Reply,
  ): Promise<void> {
    const started = performance.now();
    const given = request.model;
    if (typeof given !== "string" || given === "") return reply.json(400, { error: "model is required" });
    const name = ollamaModelName(given);
    const model = installed.get(name);
    if (!model) return reply.json(404, { error: `model '${given}' not found` });
    const messages = kind === "chat" ? request.messages : undefined;
    if (messages !== undefined && !Array.isArray(messages)) {
      return reply.json(400, { error: "messages must be an array" });
    }
    const turns: ChatTurn[] = ((messages ?? []) as unknown[]).map((message) => {
      const m = (message ?? {}) as Record<string, unknown>;
      return {
        role: String(m.role ?? ""),
        content: typeof m.content === "string" ? m.content : "",
        images: Array.isArray(m.images) ? m.images : [],
      };
    });
    const chatMessages = turns.map(({ role, content }) => ({ role, content }));
    const prompt = typeof request.prompt === "string" ? request.prompt : "";
    const images = kind === "chat" ? turns.flatMap((turn) => turn.images) : [];
    if (kind === "generate" && Array.isArray(request.images)) images.push(...request.images);
    // Go decodes `images` ([]byte) from base64 while it reads the body, before anything else.
    if (images.some((image) => typeof image !== "string" || !isBase64(image))) {
      return reply.json(400, { error: "illegal base64 data at input byte 0" });
    }
    if (
      request.raw === true &&
      (isFilled(request.template) || isFilled(request.system) || isFilled(request.context))
    ) {
      return reply.json(400, { error: "raw mode does not support template, system, or context" });
    }
    const base = () => ({ model: given, created_at: new Date().toISOString() });
    const piece = (content: string) =>
      kind === "chat" ? { message: { role: "assistant", content } } : { response: content };

    // No messages (chat) or no prompt (generate): a load, or an unload with keep_alive 0. Ollama
    // answers one JSON object either way, streaming or not.
    if ((kind === "chat" && chatMessages.length === 0) || (kind === "generate" && prompt === "")) {
      const unload = keepAliveMs(request.keep_alive) === 0;
      if (unload) loaded.delete(name);
      else await ensureLoaded(name, request.keep_alive);
      return reply.json(200, {
        ...base(),
        ...piece(""),
        done: true,
        done_reason: unload ? "unload" : "load",
      });
    }

    if (!model.capabilities.includes("completion")) {
      return reply.json(400, { error: `"${given}" does not support ${kind}` });
    }
    const tools = kind === "chat" && Array.isArray(request.tools) ? (request.tools as unknown[]) : [];
    if (tools.length > 0 && !model.capabilities.includes("tools")) {
      return reply.json(400, { error: `${name} does not support tools` });
    }
    if (images.length > 0 && !model.capabilities.includes("vision")) {
      return reply.json(400, { error: `${name} does not support vision` });
    }
    const calls =
      tools.length > 0 && turns.at(-1)?.role === "user"
        ? tools.slice(0, Math.max(1, options.toolCallsPerAnswer ?? 1)).map((tool, index) => {
            const fn =
              ((tool ?? {}) as { function?: { name?: unknown; parameters?: unknown } }).function ?? {};
            return {
              ...(options.toolCallIds === false ? {} : { id: toolCallId() }),
              function: {
                index,
                name: String(fn.name ?? ""),
                arguments: exampleOf(fn.parameters ?? { type: "object" }, "value"),
              },
            };
          })
        : [];
    const pieces =
      request.format !== undefined && request.format !== null && request.format !== ""
        ? chunked(
            JSON.stringify(
              request.format === "json" ? { text: tokens.join("") } : exampleOf(request.format, "value"),
            ),
          )
        : tokens;

    const modelOptions = (request.options ?? {}) as Record<string, unknown>;
    const numPredict = typeof modelOptions.num_predict === "number" ? modelOptions.num_predict : -1;
    const stops = Array.isArray(modelOptions.stop)
      ? modelOptions.stop.filter((stop): stop is string => typeof stop === "string" && stop !== "")
      : [];
    const loadMs = await ensureLoaded(name, request.keep_alive);
    const promptTokens = countPromptTokens(
      kind === "chat" ? chatMessages : [{ role: "user", content: prompt }],
    );
    const stream = request.stream !== false ? reply.stream() : undefined;
    const emit = (content: string) =>
      stream ? stream.write({ ...base(), ...piece(content), done: false }) : true;

    const promptMs = options.promptMs ?? 0;
    const tokenMs = options.tokenMs ?? 0;
    await sleep(promptMs);
    let output = "";
    let evalCount = 0;
    let doneReason = "stop";
    if (calls.length > 0) {
      // Ollama's tool parser holds the model's output back and answers the calls whole.
      await sleep(tokenMs);
      if (reply.gone()) return;
      evalCount = Math.ceil(JSON.stringify(calls).length / 4);
      if (
        stream &&
        !stream.write({
          ...base(),
          message: { role: "assistant", content: "", tool_calls: calls },
          done: false,
        })
      ) {
        return;
      }
    }
    for (const token of calls.length > 0 ? [] : pieces) {
      if (numPredict >= 0 && evalCount >= numPredict) {
        doneReason = "length";
        break;
      }
      await sleep(tokenMs);
      if (reply.gone()) return;
      if (evalCount === options.failAfterTokens) return reply.drop();
      evalCount++;
      const combined = output + token;
      const stopAt = Math.min(...stops.map((stop) => combined.indexOf(stop)).filter((index) => index >= 0));
      if (Number.isFinite(stopAt)) {
        // Ollama leaves the stop string out of the answer.
        const visible = combined.slice(output.length, Math.max(output.length, stopAt));
        output += visible;
        if (visible && !emit(visible)) return;
        break;
      }
      output = combined;
      if (!emit(token)) return;
    }
    if (reply.gone()) return;
    const final = {
      ...base(),
      ...piece(stream ? "" : output),
      ...(!stream && calls.length > 0
        ? { message: { role: "assistant", content: "", tool_calls: calls } }
        : {}),
      done: true,
      done_reason: doneReason,
      ...(kind === "generate"
        ? { context: Array.from({ length: promptTokens + evalCount }, (_, i) => i + 1) }
        : {}),
      ...metrics({
        total_duration: msToNs(performance.now() - started),
        load_duration: msToNs(loadMs),
        prompt_eval_count: promptTokens,
        prompt_eval_duration: msToNs(promptMs),
        eval_count: evalCount,
        eval_duration: msToNs(tokenMs * evalCount),
      }),
    };
    return stream ? stream.end(final) : reply.json(200, final);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    installed: () => [...installed.keys()],
    loaded: loadedNow,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Reply {
  json(status: number, value: unknown): void;
  empty(status: number): void;
  text(status: number, value: string): void;
  /** Starts an NDJSON stream; `write` answers false once the client is gone. */
  stream(): { write(value: unknown): boolean; end(last: unknown): void };
  /** Whether the client hung up before the answer was complete. */
  gone(): boolean;
  /** Drops the connection mid-answer, as a crashed server does. */
  drop(): void;
}

/** Writes answers the way Ollama's server does, logging each JSON object sent. */
function replyTo(res: ServerResponse, entry: FakeOllamaRequest): Reply {
  let hungUp = false;
  res.on("close", () => {
    if (!res.writableFinished) hungUp = true;
  });
  const gone = () => hungUp || res.destroyed;
  return {
    json(status, value) {
      entry.status = status;
      entry.sent.push(value);
      res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify(value));
    },
    empty(status) {
      entry.status = status;
      res.writeHead(status, { "content-length": "0" });
      res.end();
    },
    text(status, value) {
      entry.status = status;
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
      res.end(value);
    },
    stream() {
      entry.status = 200;
      res.writeHead(200, { "content-type": "application/x-ndjson" });
      const write = (value: unknown) => {
        if (gone()) return false;
        entry.sent.push(value);
        res.write(`${JSON.stringify(value)}\n`);
        return true;
      };
      return {
        write,
        end(last) {
          if (write(last)) res.end();
        },
      };
    },
    gone,
    drop: () => res.destroy(),
  };
}
