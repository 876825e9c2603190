/**
 * Commits a model manifest to the ModelRegistry once: after the gateway registered it, the
 * publisher records its hash and URI on chain with a GBT stake, so the model's provenance
 * outlives any one gateway and governance can delist it (forfeiting the stake). Idempotent: a hash
 * this publisher already committed answers "exists" without a transaction; one committed by
 * someone else is a CONFLICT. The stake is checked against the registry's minimum and the
 * publisher's balance before anything is sent.
 */
import { GbtError } from "@gbt/protocol";
import { formatUnits, type Hash, type Hex, isAddressEqual, zeroAddress } from "viem";
import { readContract } from "viem/actions";
import type { ChainWriter } from "../chain-client.js";
import { toChainError } from "../chain-error.js";
import type { GbtDeployment } from "../deployment.js";
import { modelRegistryAbi } from "../generated/abis.js";
import { publishManifest } from "./publish-manifest.js";
import { readGbtBalance } from "./read-gbt-balance.js";

export interface CommitManifestParameters {
  deployment: Pick<GbtDeployment, "token" | "registry" | "chainId">;
  manifestHash: Hex;
  uri: string;
  /** GBT wei staked with the manifest (at least the registry's minimum). */
  stake: bigint;
  /** The RPC URL, for error messages. */
  rpcUrl: string;
}

export interface CommittedManifest {
  status: "published" | "exists";
  registry: `0x${string}`;
  chainId: number;
  transaction: Hash | null;
  /** The stake, in GBT. */
  stake: string;
}

const gbt = (wei: bigint) => `${formatUnits(wei, 18)} GBT`;

export async function commitManifest(
  client: ChainWriter,
  parameters: CommitManifestParameters,
): Promise<CommittedManifest> {
  const { deployment } = parameters;
  const publisherAddress = client.account.address;
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
    throw toChainError(error, "read the model registry", parameters.rpcUrl);
  }
  const base = { registry: deployment.registry, chainId: deployment.chainId };
  const [publisher, , , stake] = existing;
  if (publisher !== zeroAddress) {
    if (!isAddressEqual(publisher, publisherAddress)) {
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
      `The registry needs a publisher stake of at least ${gbt(minimum)}; --stake is ${gbt(parameters.stake)}.`,
      { hint: `Use --stake ${formatUnits(minimum, 18)} or more.` },
    );
  }
  const balance = await readGbtBalance(client, { token: deployment.token, account: publisherAddress });
  if (balance < parameters.stake) {
    throw new GbtError(
      "INSUFFICIENT_FUNDS",
      `The publisher ${publisherAddress} holds ${gbt(balance)}; the stake is ${gbt(parameters.stake)}.`,
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
