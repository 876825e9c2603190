/**
 * From a verified signed manifest to what the embedded backend serves: the manifest's GGUF weights
 * under the model's name, with the sha256 the backend checks before loading it.
 */
import { GbtError, type SignedModelManifest, verifyModelManifest } from "@gbt/protocol";
import { manifestBaseDir, readManifestFile, resolveArtifactFile } from "@gbt/publish";
import type { Address } from "viem";
import type { EmbeddedModelFile } from "./backends/embedded.js";

export async function embeddedModelFromManifest(
  signed: SignedModelManifest,
  baseDir: string,
): Promise<EmbeddedModelFile> {
  const manifest = signed.payload;
  const index = manifest.artifacts.findIndex(
    (artifact) => artifact.role === "weights" && artifact.path?.toLowerCase().endsWith(".gguf"),
  );
  const weights = manifest.artifacts[index];
  if (manifest.runtime.format !== "gguf" || weights?.path === undefined) {
    throw new GbtError(
      "INVALID_INPUT",
      `Model ${manifest.name}@${manifest.version} has no local GGUF weights artifact.`,
      {
        hint: "The embedded backend serves GGUF files named by a `path` artifact with role weights.",
      },
    );
  }
  return {
    id: manifest.name,
    path: await resolveArtifactFile(baseDir, weights.path, index),
    sha256: weights.sha256,
  };
}

export interface ManifestModelFileOptions {
  /** Chain the signature must be for (default: the file's own). */
  chainId?: number;
  /** Only manifests signed by these publishers are served. */
  publishers?: readonly Address[];
}

/**
 * Reads a signed manifest file (as written by `gbt model publish --out`), verifies its signature,
 * and returns the model to serve with its expected sha256 (artifacts relative to the file).
 * For `gbt serve --manifest FILE`: pass the result in the embedded backend's `models`.
 */
export async function embeddedModelFromManifestFile(
  path: string,
  options: ManifestModelFileOptions = {},
): Promise<EmbeddedModelFile> {
  const document = (await readManifestFile(path)) as { domain?: { chainId?: unknown } } | null;
  const ownChain = typeof document?.domain?.chainId === "number" ? document.domain.chainId : undefined;
  const signed = await verifyModelManifest(document, {
    chainId: options.chainId ?? ownChain ?? 0,
    ...(options.publishers ? { allowedSigners: options.publishers } : {}),
  });
  return embeddedModelFromManifest(signed, manifestBaseDir(path));
}
