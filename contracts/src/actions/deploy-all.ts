/**
 * Deploys the whole gbt system from one account: the team vesting wallet, the token (whose four
 * allocations go to the rewards pool, the treasury, the vesting wallet and the airdrop holder),
 * NodeStaking, Settlement and ModelRegistry; then funds Settlement from the rewards pool.
 */
import { GbtError } from "@gbt/protocol";
import { type Abi, type Address, getAddress, type Hex } from "viem";
import { deployContract, getBlockNumber, getChainId, waitForTransactionReceipt } from "viem/actions";
import type { ChainWriter } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import {
  gbtTokenAbi,
  gbtTokenBytecode,
  modelRegistryAbi,
  modelRegistryBytecode,
  nodeStakingAbi,
  nodeStakingBytecode,
  settlementAbi,
  settlementBytecode,
  teamVestingAbi,
  teamVestingBytecode,
} from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";

const YEAR = 365n * 24n * 3600n;

export interface DeployAllParameters {
  /** Holds the admin and governance roles; default the deploying account. */
  governance?: Address;
  /** May post settlement roots: the gateway's key, or a settler key of its own. */
  settler: Address;
  /** Receives the 40% rewards pool; must be the deploying account when funding Settlement. */
  rewardsPool?: Address;
  /** Receives the 30% treasury and every slashed or forfeited stake; default governance. */
  treasury?: Address;
  /** Receives the 10% airdrop allocation; default governance. */
  airdrop?: Address;
  /** The team allocation vests to this address; default governance. */
  teamBeneficiary?: Address;
  /** Seconds unbonded stake waits before withdrawal (default 7 days). */
  unbondingDelaySeconds?: bigint;
  /** Seconds a node has to appeal a slash (default 3 days). */
  appealWindowSeconds?: bigint;
  /** Minimum publisher stake for a model manifest (default 100 GBT). */
  minPublisherStake?: bigint;
  /**
   * Seconds a posted settlement root waits before claims verify against it, while governance can
   * cancel or replace it (default 1 day; 0 on dev chains makes roots pay at once).
   */
  rootDelaySeconds?: bigint;
  /** The most one settlement root may add to the total owed, token wei (default 1,000,000 GBT). */
  maxEpochLiability?: bigint;
  /** How much of the rewards pool moves into Settlement now (default all of it). */
  settlementFunding?: bigint;
}

export type DeployAllReturnType = GbtDeployment;

async function deploy(client: ChainWriter, abi: Abi, bytecode: Hex, args: readonly unknown[], name: string) {
  try {
    const hash = await deployContract(client, {
      abi,
      bytecode,
      args,
      account: client.account,
      chain: client.chain,
    });
    const receipt = await waitForTransactionReceipt(client, { hash });
    if (!receipt.contractAddress || receipt.status !== "success") {
      throw new GbtError("TRANSACTION_REVERTED", `Deploying ${name} failed.`, { details: { hash } });
    }
    return getAddress(receipt.contractAddress);
  } catch (error) {
    throw toChainError(error, `deploy ${name}`);
  }
}

export async function deployAll(
  client: ChainWriter,
  parameters: DeployAllParameters,
): Promise<DeployAllReturnType> {
  const deployer = client.account.address;
  const governance = parameters.governance ?? deployer;
  const treasury = parameters.treasury ?? governance;
  const rewardsPool = parameters.rewardsPool ?? deployer;
  const chainId = await getChainId(client);
  const deployBlock = Number(await getBlockNumber(client, { cacheTime: 0 }));
  const now = BigInt(Math.floor(Date.now() / 1000));

  const teamVesting = await deploy(
    client,
    teamVestingAbi,
    teamVestingBytecode,
    [parameters.teamBeneficiary ?? governance, now, 4n * YEAR, YEAR],
    "TeamVesting",
  );
  const token = await deploy(
    client,
    gbtTokenAbi,
    gbtTokenBytecode,
    [rewardsPool, treasury, teamVesting, parameters.airdrop ?? governance],
    "GBTToken",
  );
  const staking = await deploy(
    client,
    nodeStakingAbi,
    nodeStakingBytecode,
    [
      token,
      parameters.unbondingDelaySeconds ?? 7n * 86_400n,
      parameters.appealWindowSeconds ?? 3n * 86_400n,
      governance,
      treasury,
    ],
    "NodeStaking",
  );
  const settlement = await deploy(
    client,
    settlementAbi,
    settlementBytecode,
    [
      token,
      governance,
      parameters.settler,
      parameters.rootDelaySeconds ?? 86_400n,
      parameters.maxEpochLiability ?? 1_000_000n * 10n ** 18n,
    ],
    "Settlement",
  );
  const registry = await deploy(
    client,
    modelRegistryAbi,
    modelRegistryBytecode,
    [token, parameters.minPublisherStake ?? 100n * 10n ** 18n, governance, treasury],
    "ModelRegistry",
  );

  if (rewardsPool === deployer) {
    const funding = parameters.settlementFunding ?? 400_000_000n * 10n ** 18n;
    if (funding > 0n) {
      await sendContractTransaction(client, {
        address: token,
        abi: gbtTokenAbi,
        functionName: "approve",
        args: [settlement, funding],
        action: "approve the Settlement funding",
      });
      await sendContractTransaction(client, {
        address: settlement,
        abi: settlementAbi,
        functionName: "fund",
        args: [funding],
        action: "fund Settlement",
      });
    }
  }
  return { chainId, token, staking, settlement, registry, teamVesting, deployBlock };
}
