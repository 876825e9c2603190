/**
 * What an Ollama model can do, from its `/api/show` answer: Ollama's own capability list
 * ("completion", "tools", "vision", "embedding", …) and the context and embedding lengths of its
 * GGUF metadata. Answers are cached per model digest (a digest names the manifest, so a re-pulled
 * model is shown again); a failed show is not cached and counts as chat only.
 */
import { z } from "zod";
import type { ModelCapabilities } from "./types.js";

/** The part of `/api/show` read here; Ollama before 0.6 answered no `capabilities`. */
export const showSchema = z.object({
  capabilities: z.array(z.string()).optional(),
  model_info: z.record(z.string(), z.unknown()).nullish(),
});
export type ShowAnswer = z.infer<typeof showSchema>;

/** Chat only: the capabilities of a model whose show failed, or of an Ollama too old to say. */
export const CHAT_ONLY: ModelCapabilities = {
  chat: true,
  tools: false,
  jsonSchema: false,
  embeddings: false,
  vision: false,
  logprobs: false,
  completions: false,
};

/** Maps a show answer to capabilities; `format` (json / schema) needs generation, i.e. "completion". */
export function capabilitiesFromShow(show: ShowAnswer): ModelCapabilities {
  const info = show.model_info ?? {};
  const architecture = info["general.architecture"];
  const metadata = (key: string) => {
    if (typeof architecture !== "string") return undefined;
    const value = info[`${architecture}.${key}`];
    return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined;
  };
  const contextLength = metadata("context_length");
  if (show.capabilities === undefined) {
    return { ...CHAT_ONLY, ...(contextLength !== undefined ? { contextLength } : {}) };
  }
  const has = new Set(show.capabilities);
  const completion = has.has("completion");
  const embeddings = has.has("embedding");
  // A chat model's embedding_length is its hidden size, not a vector anyone is served.
  const embeddingDimensions = embeddings ? metadata("embedding_length") : undefined;
  return {
    chat: completion,
    tools: has.has("tools"),
    jsonSchema: completion,
    embeddings,
    vision: has.has("vision"),
    // Recent Ollama can answer logprobs, but this backend does not map them (yet).
    logprobs: false,
    completions: completion,
    ...(contextLength !== undefined ? { contextLength } : {}),
    ...(embeddingDimensions !== undefined ? { embeddingDimensions } : {}),
  };
}

export interface CapabilityCache {
  /** The capabilities of `model`, shown once per digest; `show` failing gives chat only, uncached. */
  get(model: string, digest: string | undefined, show: () => Promise<unknown>): Promise<ModelCapabilities>;
}

export function createCapabilityCache(): CapabilityCache {
  const cache = new Map<string, ModelCapabilities>();
  return {
    async get(model, digest, show) {
      const key = digest ?? `name:${model}`;
      const known = cache.get(key);
      if (known !== undefined) return known;
      let answer: unknown;
      try {
        answer = await show();
      } catch {
        return CHAT_ONLY;
      }
      const parsed = showSchema.safeParse(answer);
      if (!parsed.success) return CHAT_ONLY;
      const capabilities = capabilitiesFromShow(parsed.data);
      cache.set(key, capabilities);
      return capabilities;
    },
  };
}
