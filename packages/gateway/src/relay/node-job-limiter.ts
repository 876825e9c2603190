/**
 * The relay's rate limit per node: one token bucket per node, `jobsPerMinute` deep and refilled
 * at that rate, in memory (a restart forgets it, which allows at most one more burst). The relay
 * spends a node's bucket only on jobs its owners signed, so a stranger cannot use it up, and keeps
 * buckets only for registered nodes, so their number is bounded by the pool's.
 */

export interface NodeJobLimiterOptions {
  /** Jobs relayed to one node per minute, and the burst it may take at once. */
  jobsPerMinute: number;
  /** Clock in milliseconds. */
  now: () => number;
}

export interface NodeJobLimiter {
  /** Takes one of `node`'s tokens: null when taken, else the whole seconds until one is free. */
  take(node: string): number | null;
}

/** Buckets kept before the full ones (nodes idle for a minute) are dropped. */
const SWEEP_ABOVE = 4096;

export function createNodeJobLimiter(options: NodeJobLimiterOptions): NodeJobLimiter {
  const { jobsPerMinute, now } = options;
  const perMs = jobsPerMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const refilled = (bucket: { tokens: number; at: number }, at: number) =>
    Math.min(jobsPerMinute, bucket.tokens + Math.max(0, at - bucket.at) * perMs);
  return {
    take(node) {
      const at = now();
      if (buckets.size > SWEEP_ABOVE) {
        for (const [key, bucket] of buckets) if (refilled(bucket, at) >= jobsPerMinute) buckets.delete(key);
      }
      const bucket = buckets.get(node);
      const tokens = bucket === undefined ? jobsPerMinute : refilled(bucket, at);
      if (tokens < 1) {
        buckets.set(node, { tokens, at });
        return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000));
      }
      buckets.set(node, { tokens: tokens - 1, at });
      return null;
    },
  };
}
