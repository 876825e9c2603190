/**
 * @gbt/publish: model manifests for publishers and CI. Completes a manifest from its artifacts
 * (streaming sha256 and sizes), signs it (EIP-712), submits it to a gateway's registry, and
 * verifies a published manifest and its artifacts.
 */
export {
  type ArtifactCheck,
  type ArtifactProgress,
  type CompleteManifestParameters,
  completeManifest,
  manifestBaseDir,
  readManifestFile,
  rehashArtifacts,
  resolveArtifactFile,
} from "./manifest-artifacts.js";
export {
  DEFAULT_MANIFEST_CHAIN_ID,
  type PublishModelParameters,
  type PublishModelResult,
  publishModel,
  type VerifyModelParameters,
  type VerifyModelResult,
  verifyModel,
} from "./publish-model.js";
