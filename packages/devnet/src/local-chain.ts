/**
 * The chain part of `gbt up`: a dev chain with the gateway key as settler, the gateway's settlement
 * extension pointed at it, and each node funded, staked and given a chain.json (so
 * `GBT_HOME=<dir>/node-N gbt payout claim` works against the local gateway).
 */
import { join } from "node:path";
import { ANVIL_DEV_PRIVATE_KEY, stake, transferGbt, writeChainConfig } from "@gbt/contracts";
import { createSettlement, ensureGatewaySecrets, type Settlement } from "@gbt/gateway";
import { type GbtPaths, loadNodeAccount } from "@gbt/node";
import { createClient, http, parseEther, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { DEV_NODE_GBT, type DevChain, startDevChain } from "./dev-chain.js";

/** What `gbt up` stakes for each node out of its dev funding. */
export const LOCAL_NODE_STAKE = parseEther("1000");

export interface LocalChain {
  chain: DevChain;
  settlement: Settlement;
  /** Funds, stakes and writes chain.json for one node of the network. */
  joinNode(paths: GbtPaths, gatewayUrl: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalChain(parameters: {
  gatewayDataDir: string;
  epochSeconds: number;
}): Promise<LocalChain> {
  const secrets = await ensureGatewaySecrets(parameters.gatewayDataDir);
  const chain = await startDevChain({ settler: secrets.account.address, fundEth: [secrets.account.address] });
  const settlement = createSettlement({
    settlement: {
      rpcUrl: chain.rpcUrl,
      chainId: chain.deployment.chainId,
      contract: chain.deployment.settlement,
      epochSeconds: parameters.epochSeconds,
      weiPerMicroCredit: "1000000000000",
    },
  });
  const viemChain = { ...foundry, rpcUrls: { default: { http: [chain.rpcUrl] } } };
  const governance = createClient({
    account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY),
    chain: viemChain,
    transport: http(chain.rpcUrl),
    cacheTime: 0,
  });
  return {
    chain,
    settlement,
    async joinNode(paths, gatewayUrl) {
      const account = await loadNodeAccount(paths.nodeKeystore);
      await governance.request({
        method: "anvil_setBalance" as never,
        params: [account.address, toHex(parseEther("100"))] as never,
      });
      await transferGbt(governance, {
        token: chain.deployment.token,
        to: account.address,
        amount: DEV_NODE_GBT,
      });
      const node = createClient({ account, chain: viemChain, transport: http(chain.rpcUrl), cacheTime: 0 });
      await stake(node, { deployment: chain.deployment, amount: LOCAL_NODE_STAKE });
      await writeChainConfig(join(paths.configDir, "chain.json"), {
        version: 1,
        rpcUrl: chain.rpcUrl,
        deployment: chain.deployment,
        gatewayUrl,
      });
    },
    stop: () => chain.stop(),
  };
}
