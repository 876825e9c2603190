/**
 * OpenAI's legacy `POST /v1/completions` as gbt accepts it: one prompt (a string, or a list of one),
 * the raw text with no chat template, streamed in chat's SSE layout (api/node/sse-layout.ts: a
 * framing first chunk, one `text` chunk per backend delta, the finish chunk) or whole. `echo` puts
 * the prompt before the answer. What would change the answer and cannot be honoured (n or best_of
 * above 1, logprobs, suffix) is a 400 naming the field.
 */
import { z } from "zod";
import type { CompletionRequest } from "../backends/types.js";
import { generationFields, type Refusal, zodRefusal } from "./chat-request.js";

export const completionRequestSchema = z.object({
  ...generationFields,
  prompt: z.union([z.string().max(1_000_000), z.array(z.string().max(1_000_000)).length(1)]),
  echo: z.boolean().nullable().optional(),
});

export interface ParsedCompletionRequest {
  request: Omit<CompletionRequest, "signal">;
  stream: boolean;
  includeUsage: boolean;
  echo: boolean;
}

const refuse = (param: string, message: string): Refusal => ({ ok: false, param, message });

export function parseCompletionRequest(
  body: unknown,
): { ok: true; value: ParsedCompletionRequest } | Refusal {
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    if (typeof b.n === "number" && b.n > 1) {
      return refuse("n", "Invalid value for 'n': gbt answers one choice per request (n = 1).");
    }
    if (typeof b.best_of === "number" && b.best_of > 1) {
      return refuse("best_of", "Invalid value for 'best_of': gbt generates one candidate per request.");
    }
    if (b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== 0) {
      return refuse(
        "logprobs",
        "'logprobs' is not supported on this node's backend; send the request without it.",
      );
    }
    if (typeof b.suffix === "string" && b.suffix !== "") {
      return refuse("suffix", "'suffix' (insertion) is not supported on this node's backend.");
    }
    if (Array.isArray(b.prompt) && b.prompt.length > 1) {
      return refuse(
        "prompt",
        "Invalid value for 'prompt': one prompt per request; send one request per prompt.",
      );
    }
    if (Array.isArray(b.prompt) && b.prompt.some((item) => typeof item !== "string")) {
      return refuse(
        "prompt",
        "Invalid value for 'prompt': token-id prompts are not supported; send the text.",
      );
    }
  }
  const parsed = completionRequestSchema.safeParse(body);
  if (!parsed.success) return zodRefusal(parsed.error);
  const r = parsed.data;
  const stop = typeof r.stop === "string" ? [r.stop] : (r.stop ?? undefined);
  return {
    ok: true,
    value: {
      request: {
        model: r.model,
        prompt: typeof r.prompt === "string" ? r.prompt : (r.prompt[0] as string),
        ...(r.max_tokens != null ? { maxTokens: r.max_tokens } : {}),
        ...(r.temperature != null ? { temperature: r.temperature } : {}),
        ...(r.top_p != null ? { topP: r.top_p } : {}),
        ...(r.seed != null ? { seed: r.seed } : {}),
        ...(stop && stop.length > 0 ? { stop } : {}),
        ...(r.presence_penalty != null ? { presencePenalty: r.presence_penalty } : {}),
        ...(r.frequency_penalty != null ? { frequencyPenalty: r.frequency_penalty } : {}),
      },
      stream: r.stream === true,
      includeUsage: r.stream_options?.include_usage === true,
      echo: r.echo === true,
    },
  };
}
