/**
 * The gateway API: every path (paths.ts), every response schema (schemas.ts), and its typed
 * client (client/: `createGatewayClient`, one action per file, also reachable one by one as
 * `gatewayActions`).
 */
export * as gatewayActions from "./client/actions.js";
export type { ChallengeNodeParameters } from "./client/challenge-node.js";
export type { CreateAccountParameters } from "./client/create-account.js";
export type { CreateKeyParameters } from "./client/create-key.js";
export { createGatewayClient, type GatewayClient } from "./client/gateway-client.js";
export type { GatewayAuth, GatewayHints } from "./client/gateway-error.js";
export {
  createGatewayTransport,
  DEFAULT_GATEWAY_ATTEMPTS,
  DEFAULT_GATEWAY_MAX_BYTES,
  DEFAULT_GATEWAY_TIMEOUT_MS,
  type GatewayCall,
  type GatewayClientOptions,
  type GatewayTransport,
} from "./client/gateway-request.js";
export type { ListEvidenceParameters } from "./client/list-evidence.js";
export type { GetRegistryModelParameters } from "./client/registry-get.js";
export type { ListRegistryModelsParameters } from "./client/registry-list.js";
export type { SetRegistryModelStatusParameters } from "./client/registry-set-status.js";
export type { SubmitRegistryModelParameters } from "./client/registry-submit.js";
export * from "./earnings.js";
export * from "./paths.js";
export * from "./schemas.js";
