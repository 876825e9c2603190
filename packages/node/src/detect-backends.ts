/**
 * Backend detection and choice. Detection asks Ollama and the usual OpenAI-compatible servers on
 * loopback (vLLM, llama.cpp server, LM Studio, SGLang) what they run, all at once with a short
 * bound each, and never throws: a machine with nothing running is the common case. The choice
 * is deterministic: an explicit `--backend` wins, otherwise the embedded llama.cpp backend, with
 * what else was found named so the user can opt in.
 */
import { GbtError } from "@gbt/protocol";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { z } from "zod";

/** Bound for each server's probe, in milliseconds. */
export const DEFAULT_DETECT_TIMEOUT_MS = 800;
export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";

/** The OpenAI-compatible servers probed by default, each on its usual port. */
export const defaultOpenAICandidates: readonly OpenAICandidate[] = [
  { name: "vLLM", url: "http://127.0.0.1:8000/v1" },
  { name: "llama.cpp server", url: "http://127.0.0.1:8080/v1" },
  { name: "LM Studio", url: "http://127.0.0.1:1234/v1" },
  { name: "SGLang", url: "http://127.0.0.1:30000/v1" },
];

export const EMBEDDED_BACKEND_NAME = "embedded llama.cpp";

const MAX_MODELS = 256;
const backendKindSchema = z.enum(["embedded", "ollama", "openai"]);

/** An http(s) URL of bounded length. */
const httpUrlSchema = z
  .string()
  .max(512)
  .refine((value) => validHttpUrl(value), { message: "must be an http:// or https:// URL" });

/** One backend as detection saw it; stored in the node profile. */
export const detectedBackendSchema = z.strictObject({
  kind: backendKindSchema,
  name: z.string().min(1).max(128),
  url: httpUrlSchema.optional(),
  available: z.boolean(),
  version: z.string().max(128).optional(),
  models: z.array(z.string().max(512)).max(MAX_MODELS),
  /** Round trip of the probe, when the server answered. */
  latencyMs: z.number().int().min(0).optional(),
  /** Why it is not available (connection refused, timed out, unexpected answer…). */
  error: z.string().max(512).optional(),
});
export type DetectedBackend = z.infer<typeof detectedBackendSchema>;

/** The chosen backend as persisted in config: `url` for ollama / openai, none for embedded. */
export const backendChoiceSchema = z
  .strictObject({ kind: backendKindSchema, url: httpUrlSchema.optional() })
  .superRefine((choice, context) => {
    if (choice.kind === "embedded" && choice.url !== undefined) {
      context.addIssue({ code: "custom", path: ["url"], message: "the embedded backend takes no url" });
    }
    if (choice.kind !== "embedded" && choice.url === undefined) {
      context.addIssue({ code: "custom", path: ["url"], message: `a ${choice.kind} backend needs a url` });
    }
  });
export type BackendChoice = z.infer<typeof backendChoiceSchema>;

export interface OpenAICandidate {
  name: string;
  /** Base URL including `/v1`. */
  url: string;
}

export interface DetectBackendsOptions {
  /** Ollama's base URL (default http://127.0.0.1:11434). */
  ollamaUrl?: string;
  /** OpenAI-compatible servers to try (default: vLLM, llama.cpp server, LM Studio, SGLang on loopback). */
  openaiCandidates?: readonly OpenAICandidate[];
  /** Bound for each probe in ms (default 800). */
  timeoutMs?: number;
}

const ollamaVersionSchema = z.object({ version: z.string().max(128) });
const ollamaTagsSchema = z.object({ models: z.array(z.object({ name: z.string().max(512) })) });

/**
 * Detects inference backends on this machine, in parallel, each bounded by `timeoutMs`.
 * Never throws; the embedded backend comes first and is always available.
 */
export async function detectBackends(options: DetectBackendsOptions = {}): Promise<DetectedBackend[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DETECT_TIMEOUT_MS;
  const candidates = options.openaiCandidates ?? defaultOpenAICandidates;
  const probes = await Promise.all([
    probeOllama(options.ollamaUrl ?? DEFAULT_OLLAMA_URL, timeoutMs),
    ...candidates.map((candidate) => probeOpenAI(candidate, timeoutMs)),
  ]);
  return [{ kind: "embedded", name: EMBEDDED_BACKEND_NAME, available: true, models: [] }, ...probes];
}

async function probeOllama(url: string, timeoutMs: number): Promise<DetectedBackend> {
  const base: DetectedBackend = {
    kind: "ollama",
    name: "Ollama",
    url: trimUrl(url),
    available: false,
    models: [],
  };
  if (!validHttpUrl(url)) return withoutUrl(base, `not an http(s) URL: ${clip(url, 200)}`);
  return probe(base, timeoutMs, async (signal) => {
    const client = new Ollama({ host: base.url, fetch: boundedFetch(signal) });
    const [version, tags] = await Promise.all([client.version(), client.list()]);
    const parsedVersion = ollamaVersionSchema.safeParse(version);
    const parsedTags = ollamaTagsSchema.safeParse(tags);
    if (!parsedVersion.success || !parsedTags.success)
      throw new Error("unexpected answer: not an Ollama server");
    return { version: parsedVersion.data.version, models: parsedTags.data.models.map((model) => model.name) };
  });
}

async function probeOpenAI(candidate: OpenAICandidate, timeoutMs: number): Promise<DetectedBackend> {
  const base: DetectedBackend = {
    kind: "openai",
    name: clip(candidate.name, 128) || "OpenAI-compatible",
    url: trimUrl(candidate.url),
    available: false,
    models: [],
  };
  if (!validHttpUrl(candidate.url))
    return withoutUrl(base, `not an http(s) URL: ${clip(candidate.url, 200)}`);
  return probe(base, timeoutMs, async (signal) => {
    // A placeholder key: a user's real OPENAI_API_KEY must never be sent to whatever listens locally.
    const client = new OpenAI({
      apiKey: "gbt-detect",
      baseURL: base.url,
      maxRetries: 0,
      timeout: timeoutMs,
      logLevel: "off",
    });
    const page = await client.models.list({ signal });
    const data: unknown = page.data;
    if (!Array.isArray(data)) throw new Error("unexpected answer: no model list");
    const models = data.flatMap((model: unknown) =>
      typeof model === "object" && model !== null && typeof (model as { id?: unknown }).id === "string"
        ? [(model as { id: string }).id]
        : [],
    );
    return { models };
  });
}

/** A probe that could not run because its URL is malformed (the URL is left out: it fails the schema). */
function withoutUrl(base: DetectedBackend, error: string): DetectedBackend {
  const { url: _url, ...rest } = base;
  return { ...rest, error };
}

/** Runs one probe under an abort signal and a hard time bound; failures become `available: false`. */
async function probe(
  base: DetectedBackend,
  timeoutMs: number,
  run: (signal: AbortSignal) => Promise<{ version?: string; models: string[] }>,
): Promise<DetectedBackend> {
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolveTimeout) => {
    timer = setTimeout(() => {
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
      resolveTimeout("timeout");
    }, timeoutMs);
  });
  try {
    // The race guards against a client that ignores the signal somewhere.
    const result = await Promise.race([run(controller.signal), timedOut]);
    if (result === "timeout") return { ...base, error: `timed out after ${timeoutMs} ms` };
    return {
      ...base,
      available: true,
      ...(result.version !== undefined ? { version: clip(result.version, 128) } : {}),
      models: result.models.slice(0, MAX_MODELS).map((model) => clip(model, 512)),
      latencyMs: Math.round(performance.now() - started),
    };
  } catch (error) {
    const reason = controller.signal.aborted ? `timed out after ${timeoutMs} ms` : describeFailure(error);
    return { ...base, error: reason };
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/**
 * A fetch for the ollama client that honours our signal (its GET helpers pass none) and turns
 * an HTTP error into an exception before the client sees it: the client's own error path prints
 * to stdout, which would corrupt `--json` output.
 */
function boundedFetch(signal: AbortSignal): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, { ...init, signal });
    if (!response.ok) {
      const body = await response.text().catch(() => "");
      throw new Error(`HTTP ${response.status}${body ? `: ${clip(body, 120)}` : ""}`);
    }
    return response;
  };
}

/** One line saying why a probe failed, with the system error code where there is one. */
function describeFailure(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
      return clip(`${friendlyCode(code)} (${code})`, 512);
    }
    const status = (current as { status?: unknown }).status;
    if (typeof status === "number") return clip(`HTTP ${status}: ${current.message}`, 512);
    if (current.message) parts.push(current.message);
    current = current.cause;
  }
  return clip(parts[0] ?? String(error), 512) || "failed";
}

function friendlyCode(code: string): string {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused: nothing listens there";
    case "ECONNRESET":
      return "connection reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ETIMEDOUT":
      return "connection timed out";
    default:
      return "connection failed";
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;

function clip(value: string, max: number): string {
  return value.replace(CONTROL_CHARACTERS, " ").trim().slice(0, max);
}

function validHttpUrl(value: string): boolean {
  if (value.length > 512) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

function trimUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

export interface ResolveBackendChoiceParameters {
  /** `--backend`; absent or "auto" picks the embedded backend. */
  backend?: "embedded" | "ollama" | "openai" | "auto";
  /** `--backend-url`, for ollama / openai only. */
  backendUrl?: string;
  /** What detectBackends found. */
  detected: readonly DetectedBackend[];
}

export interface BackendResolution {
  choice: BackendChoice;
  /** One sentence on why this backend was chosen. */
  reason: string;
  /** Other backends that answered, which the user could choose instead. */
  alternatives: DetectedBackend[];
  /** Things the user should know, e.g. that the chosen server did not answer. */
  warnings: string[];
}

/**
 * Chooses the backend. An explicit `--backend` wins (ollama / openai take `--backend-url`, or the
 * detected / usual URL); "auto" or none picks the embedded backend, which needs no server and
 * behaves the same on every machine, and lists the other backends that answered.
 *
 * @throws GbtError INVALID_INPUT when `--backend-url` is not an http(s) URL; USAGE when it is
 * given without `--backend ollama|openai`.
 */
export function resolveBackendChoice(parameters: ResolveBackendChoiceParameters): BackendResolution {
  const { backend = "auto", backendUrl, detected } = parameters;
  if (backendUrl !== undefined && (backend === "auto" || backend === "embedded")) {
    throw new GbtError("USAGE", "--backend-url needs --backend ollama or --backend openai.", {
      details: { backend, backendUrl: clip(backendUrl, 200) },
      hint: "Example: gbt setup --backend ollama --backend-url http://127.0.0.1:11434",
    });
  }
  if (backendUrl !== undefined && !validHttpUrl(backendUrl)) {
    throw new GbtError(
      "INVALID_INPUT",
      `--backend-url ${JSON.stringify(clip(backendUrl, 200))} is not an http(s) URL.`,
      {
        details: { backendUrl: clip(backendUrl, 200), expected: "http://HOST:PORT or https://HOST:PORT" },
        hint:
          backend === "ollama"
            ? "Give the server's base URL, e.g. --backend-url http://127.0.0.1:11434"
            : "Give the server's base URL with /v1, e.g. --backend-url http://127.0.0.1:8000/v1",
      },
    );
  }
  const available = detected.filter((entry) => entry.available && entry.kind !== "embedded");

  if (backend === "auto" || backend === "embedded") {
    const others = available.map((entry) => `${entry.name} at ${entry.url}`);
    const why =
      backend === "embedded"
        ? "--backend embedded was given."
        : "The embedded llama.cpp backend is the default: it needs no server and behaves the same everywhere.";
    return {
      choice: { kind: "embedded" },
      reason:
        others.length === 0
          ? why
          : `${why} Also found: ${others.join(", ")} (choose one with --backend ollama|openai --backend-url URL).`,
      alternatives: available,
      warnings: [],
    };
  }

  const ofKind = detected.filter((entry) => entry.kind === backend && entry.url !== undefined);
  const url = trimUrl(
    backendUrl ??
      ofKind.find((entry) => entry.available)?.url ??
      ofKind[0]?.url ??
      (backend === "ollama"
        ? DEFAULT_OLLAMA_URL
        : (defaultOpenAICandidates[0]?.url ?? "http://127.0.0.1:8000/v1")),
  );
  const seen = detected.find((entry) => entry.kind === backend && entry.url === url);
  const label = backend === "ollama" ? "Ollama" : "OpenAI-compatible server";
  const warnings: string[] = [];
  if (seen === undefined) {
    warnings.push(`The ${label} at ${url} was not probed; it will be used as given.`);
  } else if (!seen.available) {
    warnings.push(
      `The ${label} at ${url} did not answer (${seen.error ?? "unavailable"}); start it before \`gbt serve\`.`,
    );
  }
  return {
    choice: { kind: backend, url },
    reason:
      backendUrl !== undefined
        ? `--backend ${backend} --backend-url ${url} was given.`
        : `--backend ${backend} was given; using ${seen?.name ?? label} at ${url}.`,
    alternatives: available.filter((entry) => !(entry.kind === backend && entry.url === url)),
    warnings,
  };
}
