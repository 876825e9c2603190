/** Pulling and verifying models: sources, the resumable downloader, manifest fit, `serve --models`. */
export {
  type DownloadArtifactParameters,
  type DownloadArtifactResult,
  type DownloadProgress,
  downloadArtifact,
  statfsFreeBytes,
} from "./download-artifact.js";
export { type EnsuredModel, ensureModels, ensureNodeModels } from "./ensure-models.js";
export { checkManifestFits, type ManifestFitOptions } from "./manifest-fit.js";
export {
  checkModelId,
  defaultModelId,
  type ModelSource,
  parseModelSource,
  pullableTestModels,
} from "./model-source.js";
export { DEFAULT_REGISTRY_GATEWAY_URL, type PullIntoNodeOptions, pullIntoNode } from "./pull-into-node.js";
export {
  DEFAULT_HF_ENDPOINT,
  manifestSidecarPath,
  modelFilePath,
  type PlannedPull,
  type PullModelOptions,
  type PullModelResult,
  type PullPolicy,
  type PullProgressEvent,
  planPull,
  pullModel,
  type RegistryReader,
} from "./pull-model.js";
export {
  agentPullPolicy,
  type PullPolicyConfig,
  pullPolicyConfigSchema,
  pullPolicyOf,
} from "./pull-policy.js";
