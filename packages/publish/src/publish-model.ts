/**
 * `gbt model publish` and `gbt model verify` as services. Publish: read the manifest, hash its
 * local artifacts (streaming), complete and validate it, sign it with the publisher key for the
 * gateway's chain, and submit it to the registry (retried, idempotent). Verify: check a signed
 * manifest's signature (from a file, or fetched from the registry) and re-hash its artifacts.
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  type GatewayClient,
  GbtError,
  type ModelManifest,
  modelManifestHash,
  modelRef,
  parseModelManifestDraft,
  parseModelRef,
  type RegistryModel,
  type RegistryStatus,
  type SignedModelManifest,
  signModelManifest,
  verifyModelManifest,
} from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import {
  type ArtifactCheck,
  type ArtifactProgress,
  completeManifest,
  manifestBaseDir,
  readManifestFile,
  rehashArtifacts,
} from "./manifest-artifacts.js";

/** The chain manifests are signed for when no gateway is asked (a dry run): anvil's. */
export const DEFAULT_MANIFEST_CHAIN_ID = 31_337;

export interface PublishModelParameters {
  manifestPath: string;
  account: LocalAccount;
  /** Sign and print only; the gateway is not contacted. */
  dryRun?: boolean;
  /** The gateway whose registry takes the manifest (required unless dryRun). */
  registry?: GatewayClient;
  /** Chain to sign for; default the gateway's (or {@link DEFAULT_MANIFEST_CHAIN_ID} on a dry run). */
  chainId?: number;
  now?: () => number;
  onProgress?: (progress: ArtifactProgress) => void;
}

export interface PublishModelResult {
  ref: string;
  /** `dry-run`: signed only; `created`: registered now; `exists`: the same content was already registered. */
  outcome: "dry-run" | "created" | "exists";
  status: RegistryStatus | null;
  gatewayUrl: string | null;
  signed: SignedModelManifest;
}

export async function publishModel(parameters: PublishModelParameters): Promise<PublishModelResult> {
  const { manifestPath, account } = parameters;
  const document = await readManifestFile(manifestPath);
  // Validate the draft before any hashing or network: a bad manifest fails in milliseconds.
  parseModelManifestDraft(document, { source: manifestPath });
  let client: GatewayClient | undefined;
  let chainId = parameters.chainId;
  if (!parameters.dryRun) {
    if (!parameters.registry)
      throw new GbtError("USAGE", "No gateway to publish to.", { hint: "Pass --gateway URL." });
    client = parameters.registry;
    const info = await client.getInfo({ retry: true });
    if (chainId !== undefined && chainId !== info.chainId) {
      throw new GbtError(
        "WRONG_CHAIN",
        `--chain-id ${chainId} is not the gateway's chain (${info.chainId}).`,
        {
          details: { expected: info.chainId, actual: chainId },
          hint: "Leave out --chain-id to sign for the gateway's chain.",
        },
      );
    }
    chainId = info.chainId;
  }
  let manifest: ModelManifest = await completeManifest({
    document,
    source: manifestPath,
    baseDir: manifestBaseDir(manifestPath),
    publisher: account.address,
    ...(parameters.now ? { now: parameters.now } : {}),
    ...(parameters.onProgress ? { onProgress: parameters.onProgress } : {}),
  });
  if (client && (document as { createdAt?: unknown }).createdAt === undefined) {
    manifest = await keepRegisteredCreatedAt(client, manifest, chainId as number);
  }
  const signed = await signModelManifest(account, {
    manifest,
    chainId: chainId ?? DEFAULT_MANIFEST_CHAIN_ID,
  });
  if (!client) return { ref: modelRef(manifest), outcome: "dry-run", status: null, gatewayUrl: null, signed };
  // The manifest hash is the idempotency key: a rerun of the same publish is the same request.
  const answer = await client.submitRegistryModel({ signed, idempotencyKey: signed.message.manifestHash });
  return {
    ref: modelRef(manifest),
    outcome: answer.created ? "created" : "exists",
    status: answer.model.status,
    gatewayUrl: new URL(client.url).origin,
    signed,
  };
}

/**
 * A rerun of a publish whose manifest leaves out createdAt must not be "other content" only
 * because the clock moved: when the registry already holds this name@version with the same
 * content but for its createdAt, that createdAt is reused, so the signature (deterministic,
 * RFC 6979) and the manifest hash come out identical and the registry answers "exists".
 */
async function keepRegisteredCreatedAt(
  client: GatewayClient,
  manifest: ModelManifest,
  chainId: number,
): Promise<ModelManifest> {
  let registered: RegistryModel;
  try {
    registered = await client.getRegistryModel({ name: manifest.name, version: manifest.version });
  } catch (error) {
    if (error instanceof GbtError && error.code === "NOT_FOUND") return manifest;
    throw error;
  }
  const previous = await verifyModelManifest(registered.signed, { chainId }).catch(() => undefined);
  if (!previous) return manifest;
  const candidate = { ...manifest, createdAt: previous.payload.createdAt };
  return modelManifestHash(candidate) === previous.message.manifestHash ? candidate : manifest;
}

export interface VerifyModelParameters {
  /** A signed manifest file, a plain manifest file (its signed version is fetched), or NAME@VERSION. */
  target: string;
  /** The gateway whose registry holds the manifest (needed for NAME@VERSION and plain manifests). */
  registry?: GatewayClient;
  /** Where artifacts of a NAME@VERSION live (default: the current directory). */
  baseDir?: string;
  /** Only this publisher may have signed (UNKNOWN_SIGNER otherwise). */
  publisher?: Address;
  /** The chain the signature must be for (default: the gateway's, or the file's own). */
  chainId?: number;
  onProgress?: (progress: ArtifactProgress) => void;
}

export interface VerifyModelResult {
  ref: string;
  publisher: Address;
  manifestHash: `0x${string}`;
  chainId: number;
  source: "file" | "registry";
  /** The registry status, when the manifest came from (or was checked against) the registry. */
  status: RegistryStatus | null;
  artifacts: ArtifactCheck[];
}

function isSignedEnvelope(value: unknown): boolean {
  return typeof value === "object" && value !== null && "signature" in value && "kind" in value;
}

export async function verifyModel(parameters: VerifyModelParameters): Promise<VerifyModelResult> {
  const { target } = parameters;
  const isFile = existsSync(target) && statSync(target).isFile();
  let signedValue: unknown;
  let baseDir = resolve(parameters.baseDir ?? ".");
  let registryModel: RegistryModel | undefined;
  let localDraft: ReturnType<typeof parseModelManifestDraft> | undefined;
  let chainId = parameters.chainId;
  const fetchFromRegistry = async (name: string, version: string) => {
    if (!parameters.registry)
      throw new GbtError("USAGE", "No gateway to fetch the manifest from.", { hint: "Pass --gateway URL." });
    const client = parameters.registry;
    const info = await client.getInfo({ retry: true });
    chainId ??= info.chainId;
    registryModel = await client.getRegistryModel({ name, version });
    return registryModel.signed;
  };
  if (isFile) {
    const document = await readManifestFile(target);
    if (parameters.baseDir === undefined) baseDir = manifestBaseDir(target);
    if (isSignedEnvelope(document)) {
      signedValue = document;
      const domain = (document as { domain?: { chainId?: unknown } }).domain;
      chainId ??= typeof domain?.chainId === "number" ? domain.chainId : DEFAULT_MANIFEST_CHAIN_ID;
    } else {
      localDraft = parseModelManifestDraft(document, { source: target });
      signedValue = await fetchFromRegistry(localDraft.name, localDraft.version);
    }
  } else if (/^[^/\\]+@[^/\\@]+$/.test(target) && !target.includes(".yaml") && !target.includes(".json")) {
    const { name, version } = parseModelRef(target);
    signedValue = await fetchFromRegistry(name, version);
  } else {
    throw new GbtError("NOT_FOUND", `${target} is neither a manifest file nor NAME@VERSION.`, {
      details: { target },
      hint: "Pass the path of a manifest (signed or not) or a registered model like my-model@1.0.0.",
    });
  }
  const signed = await verifyModelManifest(signedValue, {
    chainId: chainId ?? DEFAULT_MANIFEST_CHAIN_ID,
    ...(parameters.publisher ? { allowedSigners: [parameters.publisher] } : {}),
  });
  if (localDraft) checkDraftAgainstSigned(localDraft, signed.payload, target);
  const artifacts = await rehashArtifacts(signed.payload, baseDir, parameters.onProgress);
  return {
    ref: modelRef(signed.payload),
    publisher: signed.message.publisher as Address,
    manifestHash: signed.message.manifestHash as `0x${string}`,
    chainId: signed.domain.chainId,
    source: registryModel ? "registry" : "file",
    status: registryModel?.status ?? null,
    artifacts,
  };
}

/** A local (unsigned) manifest must describe the registered one: same artifacts, and equal hashes where it states them. */
function checkDraftAgainstSigned(
  draft: ReturnType<typeof parseModelManifestDraft>,
  signed: ModelManifest,
  source: string,
): void {
  const key = (artifact: { path?: string | undefined; uri?: string | undefined }) =>
    artifact.path ?? artifact.uri ?? "";
  const registered = new Map(signed.artifacts.map((artifact) => [key(artifact), artifact]));
  const differences: string[] = [];
  draft.artifacts.forEach((artifact, index) => {
    const match = registered.get(key(artifact));
    if (!match) differences.push(`$.artifacts[${index}] is not in the registered manifest`);
    else if (artifact.sha256 !== undefined && artifact.sha256 !== match.sha256)
      differences.push(`$.artifacts[${index}].sha256 differs`);
    else if (artifact.size !== undefined && artifact.size !== match.size)
      differences.push(`$.artifacts[${index}].size differs`);
  });
  if (draft.artifacts.length !== signed.artifacts.length) differences.push("the number of artifacts differs");
  if (differences.length > 0) {
    throw new GbtError(
      "ARTIFACT_MISMATCH",
      `${source} does not describe the registered ${modelRef(signed)}: ${differences.join("; ")}.`,
      { details: { differences } },
    );
  }
}
