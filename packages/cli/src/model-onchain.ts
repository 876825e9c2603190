/**
 * `gbt model publish --onchain`: after the gateway registered a manifest, the publisher commits its
 * hash and URI to the ModelRegistry contract with a GBT stake, so the model's provenance outlives
 * any one gateway and governance can delist it (forfeiting the stake). Idempotent: a manifest
 * hash this publisher already committed answers "exists" without a transaction.
 */
import { modelRegistryAbi, publishManifest, readGbtBalance, toChainError } from "@gbt/contracts";
import { GbtError } from "@gbt/protocol";
import { formatUnits, type Hash, type Hex, isAddressEqual, type LocalAccount, zeroAddress } from "viem";
import { readContract } from "viem/actions";
import { formatGbt } from "./chain-amount.js";
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

export interface CommittedManifest {
  status: "published" | "exists";
  registry: `0x${string}`;
  chainId: number;
  transaction: Hash | null;
  /** The stake, in GBT. */
  stake: string;
}

export async function commitManifestOnChain(
  parameters: CommitManifestParameters,
): Promise<CommittedManifest> {
  const session = await openChainSession({
    account: parameters.account,
    rpcUrl: parameters.rpcUrl,
    ...(parameters.env ? { env: parameters.env } : {}),
  });
  const { client, deployment } = session;
  let existing: readonly [`0x${string}`, bigint, boolean, bigint, string];
  let minimum: bigint;
  try {
    existing = await readContract(client, {
      address: deployment.registry,
      abi: modelRegistryAbi,
      functionName: "models",
      args: [parameters.manifestHash],
    });
    minimum = await readContract(client, {
      address: deployment.registry,
      abi: modelRegistryAbi,
      functionName: "minPublisherStake",
    });
  } catch (error) {
    throw toChainError(error, "read the model registry", session.rpcUrl);
  }
  const base = { registry: deployment.registry, chainId: deployment.chainId };
  const [publisher, , , stake] = existing;
  if (publisher !== zeroAddress) {
    if (!isAddressEqual(publisher, parameters.account.address)) {
      throw new GbtError(
        "CONFLICT",
        `Manifest ${parameters.manifestHash} is already committed on chain by ${publisher}.`,
        {
          details: { manifestHash: parameters.manifestHash, publisher },
        },
      );
    }
    return { ...base, status: "exists", transaction: null, stake: formatUnits(stake, 18) };
  }
  if (parameters.stake < minimum) {
    throw new GbtError(
      "INVALID_INPUT",
      `The registry needs a publisher stake of at least ${formatGbt(minimum)}; --stake is ${formatGbt(parameters.stake)}.`,
      { hint: `Use --stake ${formatUnits(minimum, 18)} or more.` },
    );
  }
  const balance = await readGbtBalance(client, {
    token: deployment.token,
    account: parameters.account.address,
  });
  if (balance < parameters.stake) {
    throw new GbtError(
      "INSUFFICIENT_FUNDS",
      `The publisher ${parameters.account.address} holds ${formatGbt(balance)}; the stake is ${formatGbt(parameters.stake)}.`,
      { hint: "Fund the publisher's address with GBT first." },
    );
  }
  const { hash } = await publishManifest(client, {
    deployment,
    manifestHash: parameters.manifestHash,
    uri: parameters.uri,
    stake: parameters.stake,
  });
  return { ...base, status: "published", transaction: hash, stake: formatUnits(parameters.stake, 18) };
}
