/**
 * @gbt/gateway: the pooled OpenAI-compatible endpoint. So far its routing core: the live
 * instance registry, the router (least-loaded pick with breaker, floor, ramp-up and health),
 * and the multipliers the ledger will apply (ramp-up, anti-flapping switch penalty).
 */
export {
  ADMITTED,
  type Admission,
  type BreakerState,
  type CallOutcome,
  CircuitBreaker,
  type CircuitBreakerOptions,
  defaultBreakerOptions,
  REFUSED,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from "./routing/circuit-breaker.js";
export {
  defaultHealthWindowOptions,
  type HealthCounts,
  HealthWindow,
  type HealthWindowOptions,
  type ResolvedHealthWindowOptions,
  resolveHealthWindowOptions,
} from "./routing/health-score.js";
export {
  type HeartbeatUpdate,
  type InstanceRegistration,
  InstanceRegistry,
  type RegistryOptions,
  type ReleaseStats,
  RoutingInstance,
} from "./routing/instance-registry.js";
export {
  defaultRampUpOptions,
  defaultSwitchPenaltyOptions,
  type RampUpOptions,
  type ResolvedRampUpOptions,
  type ResolvedSwitchPenaltyOptions,
  rampFactor,
  resolveRampUpOptions,
  resolveSwitchPenaltyOptions,
  type SwitchPenaltyOptions,
  switchPenalty,
} from "./routing/ramp-up.js";
export {
  type GatewayInstanceView,
  Router,
  type RoutingLease,
  type SelectOptions,
} from "./routing/router.js";
