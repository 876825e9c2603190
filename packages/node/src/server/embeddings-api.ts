/**
 * OpenAI's `POST /v1/embeddings` as gbt accepts and answers it: a string or a list of strings
 * (token-id inputs are refused: gbt's backends embed text), `encoding_format` float or base64
 * (little-endian float32, as OpenAI encodes it), `dimensions` where the model allows.
 */
import { z } from "zod";
import type { EmbedRequest, EmbedResult } from "../backends/types.js";
import { type Refusal, zodRefusal } from "./chat-request.js";

/** The most inputs one request may carry (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

const text = z.string().min(1, "an empty string cannot be embedded").max(1_000_000);

export const embeddingsRequestSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([
    text,
    z
      .array(text)
      .min(1, "at least one input is required")
      .max(MAX_EMBEDDING_INPUTS, `at most ${MAX_EMBEDDING_INPUTS} inputs per request`),
  ]),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().min(1).max(65_536).optional(),
  user: z.string().max(256).optional(),
});

export interface ParsedEmbeddingsRequest {
  request: Omit<EmbedRequest, "signal">;
  encoding: "float" | "base64";
}

export function parseEmbeddingsRequest(
  body: unknown,
): { ok: true; value: ParsedEmbeddingsRequest } | Refusal {
  const input = (body as { input?: unknown } | null)?.input;
  if (Array.isArray(input) && input.length > MAX_EMBEDDING_INPUTS) {
    return {
      ok: false,
      param: "input",
      message: `Invalid value for 'input': at most ${MAX_EMBEDDING_INPUTS} inputs per request (got ${input.length}); split the batch.`,
    };
  }
  if (Array.isArray(input) && input.length > 0 && input.some((item) => typeof item !== "string")) {
    return {
      ok: false,
      param: "input",
      message: "Invalid value for 'input': token-id inputs are not supported; send the text.",
    };
  }
  const parsed = embeddingsRequestSchema.safeParse(body);
  if (!parsed.success) return zodRefusal(parsed.error);
  const r = parsed.data;
  return {
    ok: true,
    value: {
      request: {
        model: r.model,
        input: typeof r.input === "string" ? [r.input] : r.input,
        ...(r.dimensions !== undefined ? { dimensions: r.dimensions } : {}),
      },
      encoding: r.encoding_format ?? "float",
    },
  };
}

/** A vector as OpenAI's base64 encoding carries it: float32, little-endian. */
export function base64Embedding(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] as number, i * 4);
  return bytes.toString("base64");
}

/** The answer body. */
export function embeddingsBody(model: string, result: EmbedResult, encoding: "float" | "base64") {
  return {
    object: "list" as const,
    data: result.embeddings.map((embedding, index) => ({
      object: "embedding" as const,
      index,
      embedding: encoding === "base64" ? base64Embedding(embedding) : embedding,
    })),
    model,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  };
}
