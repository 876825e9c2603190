/** Prometheus metrics of the gateway (prom-client), one registry per gateway instance. */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface GatewayMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
  upstreamFailures: Counter<"outcome">;
  panicRoutes: Counter;
  gatewayTime: Histogram;
  inFlight: Gauge;
  receipts: Counter<"status">;
  tokens: Counter<"type">;
  settlementErrors: Counter;
}

export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: "gbt_gateway_requests_total",
      help: "HTTP requests by route and status code.",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    upstreamFailures: new Counter({
      name: "gbt_gateway_upstream_failures_total",
      help: "Node attempts that failed: failure / cooldown before the first byte, mid_stream after it.",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    panicRoutes: new Counter({
      name: "gbt_gateway_panic_routes_total",
      help: "Requests routed to a parked instance because every instance of their model was parked (panic mode).",
      registers: [registry],
    }),
    gatewayTime: new Histogram({
      name: "gbt_gateway_own_time_seconds",
      help: "The gateway's own time before a request is forwarded (x-gbt-gateway-ms).",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: "gbt_gateway_in_flight_requests",
      help: "Chat completions being served now.",
      registers: [registry],
    }),
    receipts: new Counter({
      name: "gbt_gateway_receipts_total",
      help: "Settled requests by receipt status (valid, missing, invalid, mismatch).",
      labelNames: ["status"],
      registers: [registry],
    }),
    tokens: new Counter({
      name: "gbt_gateway_tokens_total",
      help: "Tokens settled (type = prompt | completion).",
      labelNames: ["type"],
      registers: [registry],
    }),
    settlementErrors: new Counter({
      name: "gbt_gateway_settlement_errors_total",
      help: "Settlements that could not be written (see the logs).",
      registers: [registry],
    }),
  };
}
