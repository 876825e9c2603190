/**
 * A local dev chain: a real anvil, the whole gbt system deployed from anvil's first dev account
 * (governance, treasury and rewards pool), the gateway key as the settler, and the node and
 * gateway keys of this gbt home given ETH for gas (and the node 10,000 GBT to stake). Used by
 * `gbt chain dev` and `gbt up`. Settlement roots take effect at once here (root delay 0) unless
 * asked otherwise: a dev loop claims right after its epoch, and nobody stands by to cancel.
 */
import {
  ANVIL_DEV_PRIVATE_KEY,
  deployAll,
  type GbtDeployment,
  type RunningAnvil,
  startAnvil,
  transferGbt,
} from "@gbt/contracts";
import { readJsonFile, writeJsonFile } from "@gbt/store";
import { type Address, createClient, http, parseEther, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { z } from "zod";

export const DEV_NODE_GBT = parseEther("10000");
const DEV_ETH = parseEther("100");

export interface StartDevChainParameters {
  port?: number;
  host?: string;
  /** May post settlement roots: the gateway key. */
  settler: Address;
  /** Get 100 ETH for gas and DEV_NODE_GBT each (node keys). */
  fundGbt?: readonly Address[];
  /** Get 100 ETH for gas only (the gateway key). */
  fundEth?: readonly Address[];
  unbondingDelaySeconds?: bigint;
  /** Seconds a settlement root waits before it pays (default 0 on a dev chain). */
  rootDelaySeconds?: bigint;
}

export interface DevChain {
  anvil: RunningAnvil;
  rpcUrl: string;
  deployment: GbtDeployment;
  governance: Address;
  stop(): Promise<void>;
}

export async function startDevChain(parameters: StartDevChainParameters): Promise<DevChain> {
  const anvil = await startAnvil({
    ...(parameters.port !== undefined ? { port: parameters.port } : {}),
    ...(parameters.host !== undefined ? { host: parameters.host } : {}),
  });
  try {
    const client = createClient({
      account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY),
      chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
      transport: http(anvil.rpcUrl),
      cacheTime: 0,
    });
    const deployment = await deployAll(client, {
      settler: parameters.settler,
      rootDelaySeconds: parameters.rootDelaySeconds ?? 0n,
      ...(parameters.unbondingDelaySeconds !== undefined
        ? { unbondingDelaySeconds: parameters.unbondingDelaySeconds }
        : {}),
    });
    const gas = [...new Set([...(parameters.fundGbt ?? []), ...(parameters.fundEth ?? [])])];
    for (const address of gas) {
      // anvil_setBalance: dev chains only; no transaction, no nonce to race.
      await client.request({
        method: "anvil_setBalance" as never,
        params: [address, toHex(DEV_ETH)] as never,
      });
    }
    for (const to of parameters.fundGbt ?? []) {
      await transferGbt(client, { token: deployment.token, to, amount: DEV_NODE_GBT });
    }
    return {
      anvil,
      rpcUrl: anvil.rpcUrl,
      deployment,
      governance: client.account.address,
      stop: () => anvil.stop(),
    };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}

/**
 * Puts the chain into `gateway.json`'s settlement section, keeping every other setting; the
 * gateway then posts epoch roots to this chain, signed by `settlerKeyFile`'s key when given (a
 * settler key file left from an earlier chain is dropped otherwise: it holds no role on this one).
 */
export async function writeGatewaySettlement(
  configFile: string,
  settlement: {
    rpcUrl: string;
    chainId: number;
    contract: Address;
    /** The NodeStaking contract: what routing.minStakeGbt reads. */
    staking?: Address;
    epochSeconds: number;
    settlerKeyFile?: string;
  },
): Promise<void> {
  // Only the settlement section is ours: the rest of the file is kept as it is, unvalidated.
  const current =
    (await readJsonFile(configFile, z.record(z.string(), z.unknown()), {
      what: "The gateway config",
      hint: "Fix or remove the file, then run `gbt chain dev` again; it was not touched.",
    })) ?? {};
  const { settlerKeyFile: _earlier, ...previous } = (current.settlement ?? {}) as Record<string, unknown>;
  await writeJsonFile(configFile, { ...current, settlement: { ...previous, ...settlement } });
}
