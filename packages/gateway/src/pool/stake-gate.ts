/**
 * The minimum stake at registration (`routing.minStakeGbt`): a node joins the pool only when its
 * active stake in NodeStaking is at least the minimum. The stake is read from the chain at each
 * registration, after the signature is verified (so only a real node costs a chain read). A chain
 * that cannot be read never admits a node: the registration gets 503 `stake_unavailable`, which the
 * node retries with backoff. A minimum of 0 turns the gate off: no chain is read at all.
 */
import { type ChainReader, nodeStakingAbi } from "@gbt/contracts";
import { GbtError, HttpError } from "@gbt/protocol";
import type { Logger } from "pino";
import { type Address, createClient, formatUnits, getAddress, http, parseUnits } from "viem";
import { readContract } from "viem/actions";
import type { GatewayConfig } from "../gateway-config.js";

/** A node's active stake, in GBT wei (18 decimals). */
export type ReadStake = (node: Address) => Promise<bigint>;

export interface StakeGateOptions {
  /** The minimum, in whole GBT (`100`, `"12.5"`); 0 disables the gate. */
  minStakeGbt: string | number;
  readStake: ReadStake;
  logger: Logger;
}

export interface StakeGate {
  /** The minimum in wei (0n: the gate is off). */
  readonly minStakeWei: bigint;
  /** Resolves when `node` may register; throws the HttpError to answer otherwise. */
  check(node: Address): Promise<void>;
}

/** GBT (a decimal number or string, up to 18 decimals) in wei; CONFIG_INVALID otherwise. */
export function gbtToWei(value: string | number): bigint {
  let text: string;
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw badMinimum(value);
    text = String(value).includes("e") ? value.toFixed(18) : String(value);
  } else text = value.trim();
  if (!/^\d{1,30}(\.\d{1,18})?$/.test(text)) throw badMinimum(value);
  return parseUnits(text, 18);
}

export function createStakeGate(options: StakeGateOptions): StakeGate {
  const minStakeWei = gbtToWei(options.minStakeGbt);
  const logger = options.logger.child({ component: "stake-gate" });
  const required = `${formatUnits(minStakeWei, 18)} GBT`;
  return {
    minStakeWei,
    async check(node) {
      if (minStakeWei === 0n) return;
      let staked: bigint;
      try {
        staked = await options.readStake(node);
      } catch (error) {
        logger.warn({ node, err: error }, "cannot read a node's stake; its registration is refused for now");
        throw new HttpError(
          "stake_unavailable",
          `The gateway cannot read node ${node}'s stake from the chain right now; this gateway requires ${required} (routing.minStakeGbt). The node retries on its own.`,
          null,
          { "retry-after": "30" },
        );
      }
      if (staked >= minStakeWei) return;
      const missing = formatUnits(minStakeWei - staked, 18);
      logger.info(
        { node, staked: staked.toString(), required: minStakeWei.toString() },
        "node below the minimum stake",
      );
      throw new HttpError(
        "insufficient_stake",
        `Node ${node} has ${formatUnits(staked, 18)} GBT staked; this gateway requires ${required} (routing.minStakeGbt). Stake ${missing} GBT more with \`gbt stake deposit ${missing}\`; the node registers again on its own.`,
      );
    },
  };
}

/** Reads a node's active stake (`NodeStaking.stakeOf`) through `publicClient`. */
export function readStakeFromChain(parameters: {
  publicClient: ChainReader;
  stakeAddress: Address;
}): ReadStake {
  return (node) =>
    readContract(parameters.publicClient, {
      address: parameters.stakeAddress,
      abi: nodeStakingAbi,
      functionName: "stakeOf",
      args: [node],
    });
}

/**
 * The gate of a gateway config: undefined when `routing.minStakeGbt` is 0, else one reading
 * `settlement.staking` over `settlement.rpcUrl` (parseGatewayConfig guarantees both are there).
 * `readStake` replaces the chain read (tests).
 */
export function stakeGateFromConfig(
  config: Pick<GatewayConfig, "routing" | "settlement">,
  logger: Logger,
  readStake?: ReadStake,
): StakeGate | undefined {
  const minStakeGbt = config.routing.minStakeGbt;
  if (gbtToWei(minStakeGbt) === 0n) return undefined;
  if (readStake) return createStakeGate({ minStakeGbt, readStake, logger });
  const chain = config.settlement;
  if (chain?.staking === undefined) {
    throw new GbtError(
      "CONFIG_INVALID",
      "routing.minStakeGbt needs settlement.rpcUrl and settlement.staking.",
      {
        details: { path: "routing.minStakeGbt" },
        hint: "Add settlement.staking (the NodeStaking address), or set routing.minStakeGbt to 0.",
      },
    );
  }
  const publicClient = createClient({
    chain: {
      id: chain.chainId,
      name: `chain ${chain.chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [chain.rpcUrl] } },
    },
    // A registration waits on this read: fail soon (503, the node retries) rather than hang.
    transport: http(chain.rpcUrl, { timeout: 5_000, retryCount: 1 }),
    cacheTime: 0,
  });
  return createStakeGate({
    minStakeGbt,
    readStake: readStakeFromChain({ publicClient, stakeAddress: getAddress(chain.staking) }),
    logger,
  });
}

function badMinimum(value: unknown): GbtError {
  return new GbtError(
    "CONFIG_INVALID",
    `routing.minStakeGbt: ${JSON.stringify(value)} is not an amount of GBT.`,
    {
      details: { path: "routing.minStakeGbt", value },
      hint: 'Write the minimum stake in whole GBT as a number or a decimal string (e.g. 100 or "12.5"); 0 turns the check off.',
    },
  );
}
