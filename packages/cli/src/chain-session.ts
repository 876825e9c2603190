/**
 * The node's view of the chain for `gbt stake` and `gbt payout`: the chain config, a viem client
 * signing with the node key (unlocked with --passphrase-file, GBT_PASSPHRASE, or a prompt on a
 * TTY), and the checks that the RPC serves the configured chain and the contracts exist there.
 */
import type { ChainWriter, GbtDeployment } from "@gbt/contracts";
import { chainConfigPath, loadChainConfig, toChainError } from "@gbt/contracts";
import { loadNodeAccount, resolvePaths } from "@gbt/node";
import { GbtError, readKeystore } from "@gbt/protocol";
import { Flags } from "@oclif/core";
import { createClient, http, type LocalAccount } from "viem";
import { getChainId, getCode } from "viem/actions";
import { ask, isInteractive, passphraseFromFlags } from "./terminal-input.js";

export const chainSessionFlags = {
  "rpc-url": Flags.string({ description: "Chain RPC URL (default: the one in chain.json)." }),
  "passphrase-file": Flags.string({
    description: "File holding the node key's passphrase (else GBT_PASSPHRASE).",
  }),
  yes: Flags.boolean({
    char: "y",
    description: "Send the transaction without asking (required without a TTY).",
  }),
};

export interface ChainSession {
  client: ChainWriter;
  deployment: GbtDeployment;
  rpcUrl: string;
  gatewayUrl: string | undefined;
}

export interface OpenChainSessionParameters {
  rpcUrl?: string | undefined;
  passphraseFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Signs with this account instead of the node key (e.g. the publisher's). */
  account?: LocalAccount;
}

export async function openChainSession(parameters: OpenChainSessionParameters = {}): Promise<ChainSession> {
  const env = parameters.env ?? process.env;
  const paths = resolvePaths(env);
  const config = await loadChainConfig(chainConfigPath(env));
  const rpcUrl = parameters.rpcUrl ?? config.rpcUrl;
  const account =
    parameters.account ?? (await nodeAccount(paths.nodeKeystore, parameters.passphraseFile, env));
  const { chainId } = config.deployment;
  const client = createClient({
    account,
    chain: {
      id: chainId,
      name: `chain ${chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpcUrl] } },
    },
    transport: http(rpcUrl, { retryCount: 0 }),
    cacheTime: 0,
  });
  let served: number;
  let code: string | undefined;
  try {
    served = await getChainId(client);
    code = await getCode(client, { address: config.deployment.staking });
  } catch (error) {
    throw toChainError(error, "reach the chain", rpcUrl);
  }
  if (served !== chainId) {
    throw new GbtError(
      "WRONG_CHAIN",
      `The RPC at ${rpcUrl} serves chain ${served}; the gbt contracts are on chain ${chainId}.`,
      {
        details: { rpcUrl, expected: chainId, actual: served },
        hint: "Point --rpc-url at the right chain, or run `gbt chain dev` again.",
      },
    );
  }
  if (code === undefined || code === "0x") {
    throw new GbtError("CONFIG_INVALID", `No gbt contracts at ${config.deployment.staking} on ${rpcUrl}.`, {
      details: { rpcUrl, staking: config.deployment.staking },
      hint: "A dev chain forgets everything when it stops: run `gbt chain dev` again.",
    });
  }
  return { client, deployment: config.deployment, rpcUrl, gatewayUrl: config.gatewayUrl };
}

/** The node key, unlocked with --passphrase-file, GBT_PASSPHRASE, or a prompt on a TTY. */
async function nodeAccount(
  keystorePath: string,
  passphraseFile: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<LocalAccount> {
  const keystore = await readKeystore(keystorePath).catch((cause: unknown) => {
    throw new GbtError("NOT_SET_UP", `No node key at ${keystorePath}.`, {
      hint: "Run `gbt setup` first: the node key is the staking and payout account.",
      cause,
    });
  });
  let passphrase = await passphraseFromFlags({ passphraseFile, env });
  if (passphrase === undefined && keystore.encrypted && isInteractive()) {
    passphrase = await ask("Passphrase of the node key", { hidden: true });
  }
  return loadNodeAccount(keystorePath, passphrase);
}
