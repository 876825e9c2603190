/** Prometheus metrics of the node server (prom-client), one registry per server instance. */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface NodeMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  tokens: Counter<"type">;
  ttft: Histogram;
  duration: Histogram;
  inFlight: Gauge;
}

export function createNodeMetrics(): NodeMetrics {
  const registry = new Registry();
  const latencyBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    registry,
    requests: new Counter({
      name: "gbt_node_requests_total",
      help: "HTTP requests by route and status code.",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    tokens: new Counter({
      name: "gbt_node_tokens_total",
      help: "Tokens processed, as counted by the backend (type = prompt | completion).",
      labelNames: ["type"],
      registers: [registry],
    }),
    ttft: new Histogram({
      name: "gbt_node_time_to_first_token_seconds",
      help: "Time from request received to the first generated token.",
      buckets: latencyBuckets,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "gbt_node_request_duration_seconds",
      help: "Chat completion duration, request received to last byte.",
      buckets: latencyBuckets,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "gbt_node_in_flight_requests",
      help: "Chat completions being generated now.",
      registers: [registry],
    }),
  };
}
