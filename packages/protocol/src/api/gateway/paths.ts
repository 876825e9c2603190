/**
 * Every HTTP path of the gateway API, in one place: the consumer API (API key), the node link
 * (signed objects), the admin API (admin token), verification, the model registry, settlement,
 * the job relay and operability. Servers route on these and clients build their URLs from them,
 * so the two cannot drift. Path parameters are URL-encoded here; callers pass them raw.
 *
 * The node-link and registry constants live beside their wire contracts (gateway-link.ts,
 * model-manifest-registry.ts) and are re-exported here so this is the one place to look.
 */
import { GATEWAY_HEARTBEAT_PATH, GATEWAY_INFO_PATH, GATEWAY_REGISTER_PATH } from "../../gateway-link.js";
import { REGISTRY_MODELS_PATH, registryModelPath } from "../../model-manifest-registry.js";

export {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  REGISTRY_MODELS_PATH,
  registryModelPath,
};

const segment = encodeURIComponent;

/** The registry's status transitions an admin may ask for. */
export type RegistryStatusAction = "approve" | "delist";

export const gatewayPaths = {
  // Consumer API (API key).
  /** `POST`: OpenAI chat completions, pooled over the nodes. */
  chatCompletions: "/v1/chat/completions",
  /** `POST`: OpenAI embeddings, pooled over the nodes whose model has `embeddings` (never streamed). */
  embeddings: "/v1/embeddings",
  /** `POST`: OpenAI legacy text completions, pooled over the nodes whose model has `completions`. */
  completions: "/v1/completions",
  /** `POST`: the OpenAI Responses API (no stored state), pooled over the nodes. */
  responses: "/v1/responses",
  /** `GET`: the models some active node serves (OpenAI list). */
  models: "/v1/models",

  // Node link (signed NodeRegistration / Heartbeat; see gateway-link.ts).
  /** `GET`: the gateway's address, chain and heartbeat interval. Public. */
  info: GATEWAY_INFO_PATH,
  /** `POST`: a signed NodeRegistration. */
  register: GATEWAY_REGISTER_PATH,
  /** `POST`: a signed Heartbeat. */
  heartbeat: GATEWAY_HEARTBEAT_PATH,

  // Admin API (admin token).
  /** `GET`: the pool, one entry per instance. */
  nodes: "/v1/gateway/nodes",
  /** `GET`: accounts with balances; `POST {name, keyName?}`: a new account and its first key. */
  accounts: "/v1/gateway/accounts",
  /** `POST {name?}`: another API key for the account. */
  accountKeys: (accountId: string) => `/v1/gateway/accounts/${segment(accountId)}/keys`,
  /** `GET`: the ledger's invariants (200 when they hold, 500 with the same report when not). */
  ledgerCheck: "/v1/gateway/ledger/check",
  /** `GET`: the door's limits (defaults for every key and account, and every override). */
  limits: "/v1/gateway/limits",
  /** `PUT {requestsPerMinute?, tokensPerMinute?, concurrentRequests?, budgetMicro?, budgetPeriod?}` (null removes one), `DELETE`: one key's or account's limits. */
  subjectLimits: (kind: "keys" | "accounts", id: string) => `/v1/gateway/limits/${kind}/${segment(id)}`,

  // Verification.
  /** `GET`: a node's tier, reputation and evidence ids. Public: operators read their own standing. */
  nodeTrust: (instanceId: string) => `/v1/gateway/nodes/${segment(instanceId)}/trust`,
  /** `POST {kinds?}`: challenge a node now (admin token). */
  nodeChallenge: (instanceId: string) => `/v1/gateway/nodes/${segment(instanceId)}/challenge`,
  /** `GET [?node=0x…&limit=1..500]`: evidence records, newest first (admin token). */
  evidence: "/v1/gateway/evidence",
  /** `GET`: one evidence record with its slashing proposal (admin token). */
  evidenceRecord: (id: string) => `/v1/gateway/evidence/${segment(id)}`,

  // Model registry (see model-manifest-registry.ts).
  /** `POST`: a signed manifest; `GET [?status=…&name=…]`: the registry, newest first. */
  registryModels: REGISTRY_MODELS_PATH,
  /** `GET`: one entry with its signed manifest. */
  registryModel: registryModelPath,
  /** `POST {reason?}`: approve or delist a version (admin token). */
  registryModelStatus: (name: string, version: string, action: RegistryStatusAction) =>
    `${registryModelPath(name, version)}/${action}`,

  // Settlement.
  /** `GET`: the Settlement contract and the latest posted epoch. Public. */
  settlement: "/v1/settlement",
  /** `POST`: settle an epoch now (admin token). */
  settlementEpochs: "/v1/settlement/epochs",
  /** The prefix of the proof routes. */
  settlementProofs: "/v1/settlement/proofs",
  /** `GET`: a node's Merkle proof of cumulative earnings in the latest epoch. Public. */
  settlementProof: (node: string) => `/v1/settlement/proofs/${segment(node)}`,

  // Job relay: the gateway carries a signed Job to a node's agent and its answer back verbatim.
  /** `POST`: a signed Job for the node's `/agent/jobs`. */
  nodeJobs: (node: string) => `/v1/nodes/${segment(node)}/jobs`,
  /** `GET`: the outcome of a relayed job. */
  nodeJob: (node: string, jobId: string) => `/v1/nodes/${segment(node)}/jobs/${segment(jobId)}`,

  // Operability.
  /** `GET`: liveness and a summary (503 while draining, with the same body). */
  health: "/healthz",
  /** `GET`: Prometheus metrics (text). */
  metrics: "/metrics",
} as const;
