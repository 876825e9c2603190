/**
 * Embedding vectors as the embeddings API serves them: llama.cpp hands back the model's raw
 * pooled vector; OpenAI's (and llama-server's default) are unit length, and `dimensions` keeps
 * the first components then scales them back to unit length (as OpenAI's shortened embeddings).
 */

/** The first `dimensions` components (all when absent), scaled to unit length (a zero vector stays zero). */
export function normalizeEmbedding(vector: readonly number[], dimensions?: number): number[] {
  const kept = dimensions === undefined ? [...vector] : vector.slice(0, dimensions);
  let sumOfSquares = 0;
  for (const value of kept) sumOfSquares += value * value;
  const norm = Math.sqrt(sumOfSquares);
  return norm === 0 ? kept : kept.map((value) => value / norm);
}
