/**
 * Every HTTP path of a node's API (`gbt serve`): the OpenAI-compatible consumer routes (an API key
 * when the node requires one; the gateway's link token for pooled traffic), health and metrics.
 * The agent's routes, served by the same listener, are the agent API's (`agentPaths`).
 */
export const nodePaths = {
  /** `POST`: OpenAI chat completions, streamed (see sse-layout.ts) or whole. The hot path. */
  chatCompletions: "/v1/chat/completions",
  /** `POST`: OpenAI embeddings (whole answers only; billed by input tokens). */
  embeddings: "/v1/embeddings",
  /** `POST`: OpenAI legacy text completions, streamed (chat's SSE layout, `text` chunks) or whole. */
  completions: "/v1/completions",
  /** `POST`: the OpenAI Responses API, streamed (`response.*` events) or whole; no stored state. */
  responses: "/v1/responses",
  /** `GET`: the models the node serves (OpenAI list, `nodeModelListSchema`). */
  models: "/v1/models",
  /** `GET`: liveness, load and the backend's health (503 while draining or unhealthy, same body). Open. */
  health: "/healthz",
  /** `GET`: Prometheus metrics (text). */
  metrics: "/metrics",
} as const;
