/**
 * `gbt model publish --onchain`: the publisher's chain session (chain.json or --rpc-url, its key)
 * and the ModelRegistry commit (@gbt/contracts' commitManifest, idempotent).
 */
import { type CommittedManifest, commitManifest } from "@gbt/contracts";
import type { Hex, LocalAccount } from "viem";
import { openChainSession } from "./chain-session.js";

export interface CommitManifestParameters {
  account: LocalAccount;
  manifestHash: Hex;
  uri: string;
  /** GBT wei staked with the manifest (at least the registry's minimum). */
  stake: bigint;
  rpcUrl?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export async function commitManifestOnChain(
  parameters: CommitManifestParameters,
): Promise<CommittedManifest> {
  const session = await openChainSession({
    account: parameters.account,
    rpcUrl: parameters.rpcUrl,
    ...(parameters.env ? { env: parameters.env } : {}),
  });
  return commitManifest(session.client, {
    deployment: session.deployment,
    manifestHash: parameters.manifestHash,
    uri: parameters.uri,
    stake: parameters.stake,
    rpcUrl: session.rpcUrl,
  });
}
