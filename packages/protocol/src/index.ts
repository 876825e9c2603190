/**
 * @gbt/protocol: the wire language of gbt. Schemas of every signed object, EIP-712 signing and
 * verification under the `gbt` domain, canonical JSON hashing, keystores, and the GbtError codes.
 */

export * from "./api/agent/index.js";
export * from "./api/gateway/index.js";
export * from "./api/node/index.js";
export * from "./api/openai/index.js";
export { bearerToken } from "./bearer.js";
export { type BoundedReadOptions, readBounded } from "./bounded-read.js";
export { canonicalJson, hashPayload } from "./canonical-json.js";
export {
  type ErrorCode,
  ExitCode,
  type ExitCodeName,
  errorCodes,
  GbtError,
  type GbtErrorOptions,
  isGbtError,
} from "./errors.js";
export {
  DEFAULT_HASH_CHUNK_BYTES,
  type FileDigest,
  type HashProgress,
  type Sha256FileOptions,
  sha256File,
} from "./file-digest.js";
export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_LINK_PATH,
  GATEWAY_REGISTER_PATH,
  type GatewayInfo,
  gatewayInfoSchema,
  type HeartbeatDetails,
  heartbeatDetailsSchema,
  LINK_ACCEPT_HEADER,
  LINK_ACCEPT_TTL_SECONDS,
  LINK_CHALLENGE_HEADER,
  LINK_CONTROL_PATH,
  LINK_INFO_HEADER,
  LINK_MAX_CONTROL_LINE_BYTES,
  LINK_NODE_HEADER,
  LINK_NODE_URL,
  LINK_SIGNATURE_TTL_SECONDS,
  LINK_TUNNEL_AUTHORITY,
  LINK_UPGRADE_PROTOCOL,
  type LinkControlReply,
  type LinkControlRequest,
  linkControlReplySchema,
  linkControlRequestSchema,
  MAX_PUBLISHED_OWNERS,
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  RECEIPT_TTL_SECONDS,
  REQUEST_ID_HEADER,
  type ReceiptTimings,
  type RegistrationDetails,
  type RegistrationResponse,
  receiptTimingsSchema,
  registrationDetailsSchema,
  registrationResponseSchema,
} from "./gateway-link.js";
export {
  assertDecodablePath,
  errorBody,
  HttpError,
  type HttpErrorCode,
  type HttpSurface,
  httpCodeOf,
  httpError,
  httpErrorCodes,
  type OpenAIErrorBody,
  readBody,
  sendError,
  sendJson,
  toHttpError,
} from "./http-errors.js";
export {
  createKeystore,
  type KeystoreFile,
  newPrivateKey,
  parsePrivateKey,
  readKeystore,
  unlockKeystore,
  unlockKeystoreKey,
  writeKeystore,
} from "./keystore.js";
export { asHttpConnection, readControlMessages } from "./link-stream.js";
export { isLoopbackHost, isLoopbackUrl } from "./loopback.js";
export {
  artifactPathSchema,
  jsonPath,
  MAX_MANIFEST_BYTES,
  type ManifestIssue,
  MODEL_MANIFEST_SCHEMA_VERSION,
  type ModelManifest,
  type ModelManifestArtifact,
  type ModelManifestDraft,
  modelManifestDraftSchema,
  modelManifestHash,
  modelManifestSchema,
  modelNameSchema,
  modelRef,
  modelVersionSchema,
  type ParseManifestOptions,
  parseManifestText,
  parseModelManifest,
  parseModelManifestDraft,
  parseModelRef,
  type SignedModelManifest,
  type SignModelManifestParameters,
  signModelManifest,
  type VerifyModelManifestOptions,
  verifyModelManifest,
} from "./model-manifest.js";
export {
  IDEMPOTENCY_KEY_HEADER,
  REGISTRY_MODELS_PATH,
  type RegistryEntry,
  type RegistryModel,
  type RegistryStatus,
  type RegistrySubmitResponse,
  registryEntrySchema,
  registryListSchema,
  registryModelPath,
  registryModelSchema,
  registryStatuses,
  registrySubmitResponseSchema,
} from "./model-manifest-registry.js";
export { digestSignerNative, recoverSignerNative } from "./native-recover.js";
export {
  type BenchmarkRecord,
  type Heartbeat,
  type Job,
  type JobResult,
  jobStates,
  type Kind,
  kindNames,
  kinds,
  type MessageInput,
  type MessageOf,
  type ModelManifestMessage,
  type NodeRegistration,
  SCHEMA_VERSION,
  type UsageReceipt,
} from "./objects.js";
export { MODEL_SWITCH_PENALTY, type ModelSwitchCost, modelSwitchCost } from "./pool-rules.js";
export * as schemas from "./primitives.js";
export {
  openSecret,
  readSecretBox,
  type SecretBoxFile,
  sealSecret,
  writeSecretBox,
} from "./secret-box.js";
export { seededRandom } from "./seeded-random.js";
export { DEFAULT_SERVER_GUARD, guardServer, type ServerGuardOptions } from "./server-guard.js";
export {
  authenticatedSigner,
  DOMAIN_NAME,
  DOMAIN_VERSION,
  digestOf,
  type GbtDomain,
  gbtDomain,
  parseSignedObject,
  type RecoverSigner,
  type SignedObject,
  type SignInput,
  type SignObjectParameters,
  signObject,
  type VerifyObjectOptions,
  verifyObject,
} from "./signed-object.js";
export { domainSeparator, typedDigest } from "./typed-digest.js";
