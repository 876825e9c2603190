/**
 * @gbt/protocol: the wire language of gbt. Schemas of every signed object, EIP-712 signing and
 * verification under the `gbt` domain, canonical JSON hashing, keystores, and the GbtError codes.
 */
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
  createKeystore,
  type KeystoreFile,
  newPrivateKey,
  parsePrivateKey,
  readKeystore,
  unlockKeystore,
  writeKeystore,
} from "./keystore.js";
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
export * as schemas from "./primitives.js";
export {
  DOMAIN_NAME,
  DOMAIN_VERSION,
  digestOf,
  type GbtDomain,
  gbtDomain,
  type SignedObject,
  type SignInput,
  type SignObjectParameters,
  signObject,
  type VerifyObjectOptions,
  verifyObject,
} from "./signed-object.js";
