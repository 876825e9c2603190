/** Model publishing: streaming artifact hashes, manifest completion, the registry client, publish and verify. */
export {
  DEFAULT_HASH_CHUNK_BYTES,
  type FileDigest,
  type HashProgress,
  type Sha256FileOptions,
  sha256File,
} from "./hash-artifact.js";
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
  embeddedModelFromManifest,
  embeddedModelFromManifestFile,
  type ManifestModelFileOptions,
} from "./manifest-model-file.js";
export {
  DEFAULT_MANIFEST_CHAIN_ID,
  type PublishModelParameters,
  type PublishModelResult,
  publishModel,
  type VerifyModelParameters,
  type VerifyModelResult,
  verifyModel,
} from "./publish-model.js";
export {
  DEFAULT_REGISTRY_ATTEMPTS,
  DEFAULT_REGISTRY_TIMEOUT_MS,
  RegistryClient,
  type RegistryClientOptions,
} from "./registry-client.js";
