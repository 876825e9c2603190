/**
 * The benchmark's fixed synthetic prompt: deterministic text of a chosen size in tokens, as the
 * backend counts them (its chat template included). The same N gives the same text on every
 * machine and every run. Each request starts with a fixed-width nonce (`#0007`), so a backend with
 * a prompt prefix cache (Ollama, llama.cpp server, vLLM) cannot skip the prefill of a repeat.
 */
import { GbtError } from "@gbt/protocol";
import type { ChatMessage } from "../backends/types.js";
import { estimateTokensFromText } from "./stats.js";

const WORDS = [
  "the",
  "quick",
  "signal",
  "travels",
  "across",
  "a",
  "quiet",
  "network",
  "of",
  "machines",
  "that",
  "share",
  "their",
  "spare",
  "cycles",
  "with",
  "anyone",
  "who",
  "asks",
  "politely",
  "every",
  "node",
  "keeps",
  "its",
  "own",
  "ledger",
  "and",
  "measures",
  "time",
  "carefully",
  "river",
  "stone",
  "lantern",
  "harbor",
  "meadow",
  "copper",
  "window",
  "garden",
  "thunder",
  "pencil",
  "orbit",
  "valley",
  "marble",
  "candle",
  "forest",
  "engine",
  "silver",
  "bridge",
  "canvas",
  "summit",
  "because",
  "while",
  "before",
  "after",
  "under",
  "between",
  "through",
  "against",
  "toward",
  "beyond",
  "seven",
  "eleven",
  "ninety",
  "hundred",
] as const;

/** Fixed-width request marker; the width keeps the token count independent of the number. */
export function promptNonce(index: number): string {
  return `#${String(index % 10_000).padStart(4, "0")}`;
}

/** `words` deterministic words (a fixed xorshift stream over a fixed list), the same everywhere. */
export function syntheticText(words: number): string {
  let state = 0x9e3779b9;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out.push(WORDS[state % WORDS.length] as string);
  }
  return out.join(" ");
}

/** The chat of the synthetic prompt with `words` words, for request `index`. */
export function syntheticMessages(words: number, index = 0): ChatMessage[] {
  const body = syntheticText(words);
  return [{ role: "user", content: body === "" ? promptNonce(index) : `${promptNonce(index)} ${body}` }];
}

export interface SyntheticPrompt {
  /** Words of synthetic text; pass to {@link syntheticMessages} with a request index. */
  words: number;
  /** Prompt tokens as the backend counts them (or estimated, see `calibration`). */
  promptTokens: number;
  /** "backend": counted by the backend's own tokenizer and chat template; "estimate": characters / 4. */
  calibration: "backend" | "estimate";
}

/**
 * Finds the synthetic prompt whose token count is the largest not above `targetTokens`, counting
 * with `countTokens` (the backend's tokenizer) when given, else estimating (flagged). Fails with
 * CONTEXT_LENGTH_EXCEEDED when even the bare chat template is larger than the target.
 */
export async function calibrateSyntheticPrompt(
  targetTokens: number,
  countTokens?: (messages: ChatMessage[]) => Promise<number>,
): Promise<SyntheticPrompt> {
  if (!Number.isInteger(targetTokens) || targetTokens < 1) {
    throw new GbtError("INVALID_INPUT", `The prompt size must be a positive integer, got ${targetTokens}.`);
  }
  const calibration = countTokens ? "backend" : "estimate";
  const count =
    countTokens ?? (async (messages: ChatMessage[]) => estimateTokensFromText(messages[0]?.content ?? ""));
  const tokensOf = (words: number) => count(syntheticMessages(words));
  const empty = await tokensOf(0);
  if (empty > targetTokens) {
    throw new GbtError(
      "INVALID_INPUT",
      `A prompt of ${targetTokens} tokens is smaller than the model's chat template alone (${empty} tokens).`,
      { details: { targetTokens, minimum: empty }, hint: `Use --prompt-tokens ${empty} or more.` },
    );
  }
  // tokens(words) is non-decreasing: grow an upper bound, then binary search the largest fit.
  let low = 0;
  let lowTokens = empty;
  let high = Math.max(1, targetTokens);
  let highTokens = await tokensOf(high);
  while (highTokens <= targetTokens) {
    low = high;
    lowTokens = highTokens;
    high *= 2;
    highTokens = await tokensOf(high);
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const tokens = await tokensOf(middle);
    if (tokens <= targetTokens) {
      low = middle;
      lowTokens = tokens;
    } else high = middle;
  }
  return { words: low, promptTokens: lowTokens, calibration };
}
