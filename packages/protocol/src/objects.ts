/**
 * The signed objects of the gbt protocol. Each kind has an EIP-712 type (what is signed), a strict
 * zod schema for its message, and optionally a free-form JSON payload bound by a keccak256 hash
 * field. `schemaVersion` lets fields grow: verifiers reject versions they do not know.
 */
import { z } from "zod";
import {
  address,
  boundedText,
  bytes32,
  identifier,
  uint16,
  uint32,
  uint64,
  unixSeconds,
  uuid,
} from "./primitives.js";

export const SCHEMA_VERSION = 1;

const schemaVersion = uint16.refine((v) => v === SCHEMA_VERSION, {
  message: `unsupported schemaVersion (this build understands ${SCHEMA_VERSION})`,
});

type Eip712Field = { name: string; type: string };

interface KindDefinition {
  /** EIP-712 fields, in signing order. */
  fields: readonly Eip712Field[];
  /** Strict schema of the JSON message. */
  message: z.ZodType;
  /** Name of the bytes32 field binding the payload, when the kind carries one. */
  payloadHashField?: string;
  /** Name of the field naming the party the object is meant for. */
  audienceField?: string;
  /** Name of the field naming the party that must have signed it. */
  signerField: string;
}

const jobFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "jobId", type: "string" },
  { name: "node", type: "address" },
  { name: "issuer", type: "address" },
  { name: "type", type: "string" },
  { name: "paramsHash", type: "bytes32" },
  { name: "nonce", type: "uint64" },
  { name: "notBefore", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
  { name: "allowlistVersion", type: "uint32" },
] as const;

const jobMessage = z.strictObject({
  schemaVersion,
  jobId: uuid,
  node: address,
  issuer: address,
  type: identifier(64),
  paramsHash: bytes32,
  nonce: uint64,
  notBefore: unixSeconds,
  expiresAt: unixSeconds,
  allowlistVersion: uint32,
});

const jobResultFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "jobId", type: "string" },
  { name: "node", type: "address" },
  { name: "issuer", type: "address" },
  { name: "jobHash", type: "bytes32" },
  { name: "envelopeHash", type: "bytes32" },
  { name: "state", type: "string" },
  { name: "resultHash", type: "bytes32" },
  { name: "auditHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
] as const;

export const jobStates = ["succeeded", "failed", "rolled_back", "rejected"] as const;

const jobResultMessage = z.strictObject({
  schemaVersion,
  jobId: uuid,
  node: address,
  issuer: address,
  jobHash: bytes32,
  /** keccak256 of the canonical JSON of the exact envelope received (signature and params included). */
  envelopeHash: bytes32,
  state: z.enum(jobStates),
  resultHash: bytes32,
  auditHash: bytes32,
  issuedAt: unixSeconds,
});

const usageReceiptFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "requestId", type: "string" },
  { name: "node", type: "address" },
  { name: "gateway", type: "address" },
  { name: "model", type: "string" },
  { name: "promptTokens", type: "uint32" },
  { name: "completionTokens", type: "uint32" },
  { name: "ttftMs", type: "uint32" },
  { name: "durationMs", type: "uint32" },
  { name: "timingsHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const usageReceiptMessage = z.strictObject({
  schemaVersion,
  requestId: identifier(128),
  node: address,
  gateway: address,
  model: identifier(256),
  promptTokens: uint32,
  completionTokens: uint32,
  ttftMs: uint32,
  durationMs: uint32,
  timingsHash: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

const modelManifestFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "publisher", type: "address" },
  { name: "manifestHash", type: "bytes32" },
  { name: "createdAt", type: "uint64" },
] as const;

const modelManifestMessage = z.strictObject({
  schemaVersion,
  name: identifier(128),
  version: identifier(64),
  publisher: address,
  manifestHash: bytes32,
  createdAt: unixSeconds,
});

const nodeRegistrationFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "node", type: "address" },
  { name: "gateway", type: "address" },
  { name: "url", type: "string" },
  { name: "capacity", type: "uint32" },
  { name: "nonce", type: "uint64" },
  { name: "detailsHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const nodeRegistrationMessage = z.strictObject({
  schemaVersion,
  node: address,
  gateway: address,
  url: z.string().url().max(512),
  capacity: uint32,
  nonce: uint64,
  detailsHash: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

const heartbeatFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "node", type: "address" },
  { name: "gateway", type: "address" },
  { name: "seq", type: "uint64" },
  { name: "inFlight", type: "uint32" },
  { name: "detailsHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const heartbeatMessage = z.strictObject({
  schemaVersion,
  node: address,
  gateway: address,
  seq: uint64,
  inFlight: uint32,
  detailsHash: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

const benchmarkRecordFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "recordId", type: "string" },
  { name: "node", type: "address" },
  { name: "backend", type: "string" },
  { name: "modelDigest", type: "string" },
  { name: "decodeTokPerSecMilli", type: "uint64" },
  { name: "eligibleCapacity", type: "uint32" },
  { name: "resultsHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const benchmarkRecordMessage = z.strictObject({
  schemaVersion,
  recordId: uuid,
  node: address,
  backend: identifier(64),
  modelDigest: boundedText(160),
  decodeTokPerSecMilli: uint64,
  eligibleCapacity: uint32,
  resultsHash: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

/**
 * An owner's claim of an unclaimed node: signed by the owner key, addressed to the node, bound to
 * the claim code the node shows (so a claim for one node's code cannot claim another) and short-lived.
 */
const nodeClaimFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "node", type: "address" },
  { name: "owner", type: "address" },
  { name: "code", type: "string" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const nodeClaimMessage = z.strictObject({
  schemaVersion,
  node: address,
  owner: address,
  code: z.string().regex(/^GBT-[0-9A-Z]{4,8}$/, { message: "must be a claim code like GBT-N7K4" }),
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

/**
 * The gateway's answer to a node opening an outbound link: signed by the gateway key, addressed to
 * the node, over the node's fresh challenge, so that the node knows which gateway holds the other
 * end before it sends anything (a replayed answer carries someone else's challenge).
 */
const linkAcceptFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "gateway", type: "address" },
  { name: "node", type: "address" },
  { name: "challenge", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const linkAcceptMessage = z.strictObject({
  schemaVersion,
  gateway: address,
  node: address,
  challenge: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

/**
 * The gateway's signed view of one node's earnings (requests, tokens, credits, multipliers,
 * settled and claimable amounts): the payload, bound by `viewHash`, addressed to the node.
 */
const earningsViewFields = [
  { name: "schemaVersion", type: "uint16" },
  { name: "gateway", type: "address" },
  { name: "node", type: "address" },
  { name: "viewHash", type: "bytes32" },
  { name: "issuedAt", type: "uint64" },
  { name: "expiresAt", type: "uint64" },
] as const;

const earningsViewMessage = z.strictObject({
  schemaVersion,
  gateway: address,
  node: address,
  viewHash: bytes32,
  issuedAt: unixSeconds,
  expiresAt: unixSeconds,
});

/** Every signed kind of the protocol. */
export const kinds = {
  Job: {
    fields: jobFields,
    message: jobMessage,
    payloadHashField: "paramsHash",
    audienceField: "node",
    signerField: "issuer",
  },
  JobResult: {
    fields: jobResultFields,
    message: jobResultMessage,
    payloadHashField: "resultHash",
    audienceField: "issuer",
    signerField: "node",
  },
  UsageReceipt: {
    fields: usageReceiptFields,
    message: usageReceiptMessage,
    payloadHashField: "timingsHash",
    audienceField: "gateway",
    signerField: "node",
  },
  ModelManifest: {
    fields: modelManifestFields,
    message: modelManifestMessage,
    payloadHashField: "manifestHash",
    signerField: "publisher",
  },
  NodeRegistration: {
    fields: nodeRegistrationFields,
    message: nodeRegistrationMessage,
    payloadHashField: "detailsHash",
    audienceField: "gateway",
    signerField: "node",
  },
  Heartbeat: {
    fields: heartbeatFields,
    message: heartbeatMessage,
    payloadHashField: "detailsHash",
    audienceField: "gateway",
    signerField: "node",
  },
  BenchmarkRecord: {
    fields: benchmarkRecordFields,
    message: benchmarkRecordMessage,
    payloadHashField: "resultsHash",
    signerField: "node",
  },
  NodeClaim: {
    fields: nodeClaimFields,
    message: nodeClaimMessage,
    audienceField: "node",
    signerField: "owner",
  },
  LinkAccept: {
    fields: linkAcceptFields,
    message: linkAcceptMessage,
    audienceField: "node",
    signerField: "gateway",
  },
  EarningsView: {
    fields: earningsViewFields,
    message: earningsViewMessage,
    payloadHashField: "viewHash",
    audienceField: "node",
    signerField: "gateway",
  },
} as const satisfies Record<string, KindDefinition>;

export type Kind = keyof typeof kinds;
export const kindNames = Object.keys(kinds) as Kind[];

/** The JSON message of a kind, as parsed (addresses checksummed, hashes lower-case). */
export type MessageOf<K extends Kind> = z.infer<(typeof kinds)[K]["message"]>;
/** The JSON message of a kind before parsing. */
export type MessageInput<K extends Kind> = z.input<(typeof kinds)[K]["message"]>;

export type Job = MessageOf<"Job">;
export type JobResult = MessageOf<"JobResult">;
export type UsageReceipt = MessageOf<"UsageReceipt">;
export type ModelManifestMessage = MessageOf<"ModelManifest">;
export type NodeRegistration = MessageOf<"NodeRegistration">;
export type Heartbeat = MessageOf<"Heartbeat">;
export type BenchmarkRecord = MessageOf<"BenchmarkRecord">;
