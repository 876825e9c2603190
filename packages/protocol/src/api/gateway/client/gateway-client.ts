/**
 * The typed client of the gateway API: `createGatewayClient({ url, adminToken?, apiKey?, fetch? })`
 * gives every action bound to one gateway (`client.listNodes()`, `client.getSettlementProof(node)`…).
 * Each action lives in its own file and takes the client first, so a caller may also import one
 * action alone and pass any GatewayTransport. Answers are parsed with the schemas of schemas.ts;
 * failures are GbtErrors (see gateway-request.ts and gateway-error.ts).
 */
import { type ChallengeNodeParameters, challengeNode } from "./challenge-node.js";
import { type CreateAccountParameters, createAccount } from "./create-account.js";
import { type CreateKeyParameters, createKey } from "./create-key.js";
import {
  createGatewayTransport,
  type GatewayClientOptions,
  type GatewayTransport,
} from "./gateway-request.js";
import { getEvidence } from "./get-evidence.js";
import { getHealth } from "./get-health.js";
import { type GetInfoParameters, getInfo } from "./get-info.js";
import { getNodeTrust } from "./get-node-trust.js";
import { checkLedger } from "./ledger-check.js";
import { clearLimits, getLimits, type SubjectParameters, setLimits } from "./limits.js";
import { listAccounts } from "./list-accounts.js";
import { type ListEvidenceParameters, listEvidence } from "./list-evidence.js";
import { listModels } from "./list-models.js";
import { listNodes } from "./list-nodes.js";
import { type GetRegistryModelParameters, getRegistryModel } from "./registry-get.js";
import { type ListRegistryModelsParameters, listRegistryModels } from "./registry-list.js";
import { type SetRegistryModelStatusParameters, setRegistryModelStatus } from "./registry-set-status.js";
import { type SubmitRegistryModelParameters, submitRegistryModel } from "./registry-submit.js";
import { getSettlementProof } from "./settlement-proof.js";
import { settleEpoch } from "./settlement-settle.js";
import { getSettlementStatus } from "./settlement-status.js";

export function createGatewayClient(options: GatewayClientOptions) {
  const transport: GatewayTransport = createGatewayTransport(options);
  return {
    ...transport,
    // Consumer API and node link.
    listModels: () => listModels(transport),
    getInfo: (parameters?: GetInfoParameters) => getInfo(transport, parameters),
    getHealth: () => getHealth(transport),
    // Admin API.
    listNodes: () => listNodes(transport),
    listAccounts: () => listAccounts(transport),
    createAccount: (parameters: CreateAccountParameters) => createAccount(transport, parameters),
    createKey: (parameters: CreateKeyParameters) => createKey(transport, parameters),
    checkLedger: () => checkLedger(transport),
    getLimits: () => getLimits(transport),
    setLimits: (parameters: Parameters<typeof setLimits>[1]) => setLimits(transport, parameters),
    clearLimits: (parameters: SubjectParameters) => clearLimits(transport, parameters),
    // Verification.
    getNodeTrust: (node: string) => getNodeTrust(transport, node),
    challengeNode: (parameters: ChallengeNodeParameters) => challengeNode(transport, parameters),
    listEvidence: (parameters?: ListEvidenceParameters) => listEvidence(transport, parameters),
    getEvidence: (id: string) => getEvidence(transport, id),
    // Model registry.
    listRegistryModels: (parameters?: ListRegistryModelsParameters) =>
      listRegistryModels(transport, parameters),
    getRegistryModel: (parameters: GetRegistryModelParameters) => getRegistryModel(transport, parameters),
    submitRegistryModel: (parameters: SubmitRegistryModelParameters) =>
      submitRegistryModel(transport, parameters),
    setRegistryModelStatus: (parameters: SetRegistryModelStatusParameters) =>
      setRegistryModelStatus(transport, parameters),
    // Settlement.
    getSettlementStatus: () => getSettlementStatus(transport),
    settleEpoch: () => settleEpoch(transport),
    getSettlementProof: (node: string) => getSettlementProof(transport, node),
  };
}

export type GatewayClient = ReturnType<typeof createGatewayClient>;
