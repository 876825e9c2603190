/**
 * @gbt/contracts: the gbt contracts (GBT token, team vesting, NodeStaking, Settlement,
 * ModelRegistry) as typed ABIs and bytecode generated from forge's output, the actions that use
 * them (one function per file, a viem client first), the cumulative-earnings Merkle tree that
 * Settlement verifies, and a real anvil for tests and dev chains.
 */
export { cancelPendingRoot } from "./actions/cancel-pending-root.js";
export { type ClaimParameters, claim } from "./actions/claim.js";
export {
  type CommitManifestParameters,
  type CommittedManifest,
  commitManifest,
} from "./actions/commit-manifest.js";
export { type DeployAllParameters, type DeployAllReturnType, deployAll } from "./actions/deploy-all.js";
export { ensureAllowance } from "./actions/ensure-allowance.js";
export { type PostRootParameters, postRoot } from "./actions/post-root.js";
export { type PublishManifestParameters, publishManifest } from "./actions/publish-manifest.js";
export { readGbtBalance } from "./actions/read-gbt-balance.js";
export { type PayoutStatus, readPayout } from "./actions/read-payout.js";
export {
  readSettlementState,
  type SettlementRoot,
  type SettlementState,
} from "./actions/read-settlement-state.js";
export { readStake, type StakeStatus } from "./actions/read-stake.js";
export { type StakeParameters, stake } from "./actions/stake.js";
export { transferGbt } from "./actions/transfer-gbt.js";
export { unbond } from "./actions/unbond.js";
export { withdraw } from "./actions/withdraw.js";
export type { ChainReader, ChainWriter } from "./chain-client.js";
export {
  type ChainConfig,
  type ChainConfigInput,
  chainConfigPath,
  chainConfigSchema,
  loadChainConfig,
  writeChainConfig,
} from "./chain-config.js";
export { toChainError } from "./chain-error.js";
export {
  buildCumulativeTree,
  type CumulativeEarning,
  type CumulativeTree,
  cumulativeLeaf,
} from "./cumulative-merkle-tree.js";
export { type GbtDeployment, gbtDeploymentSchema } from "./deployment.js";
export * from "./generated/abis.js";
export {
  type SendContractTransactionParameters,
  type SentTransaction,
  sendContractTransaction,
} from "./send-contract-transaction.js";
export {
  ANVIL_DEV_PRIVATE_KEY,
  anvilBinary,
  type RunningAnvil,
  type StartAnvilParameters,
  startAnvil,
} from "./start-anvil.js";
