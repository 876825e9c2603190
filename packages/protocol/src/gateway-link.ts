/**
 * The wire contract between a node and its gateway, shared by both sides so they cannot drift.
 *
 * 1. The node asks `GET /v1/gateway/info` for the gateway's address and chain, then registers with
 *    `POST /v1/gateway/register` (a signed NodeRegistration whose payload is a
 *    `RegistrationDetails`); the gateway answers a `RegistrationResponse` holding the instance id
 *    and a fresh link token. The details name the node's owners: the gateway relays to the node's
 *    agent only jobs signed by one of them (`/v1/nodes/:node/jobs`), and nothing to a node that
 *    names none. They are signed by the node key, so no one else can widen the list.
 * 2. Every `heartbeatIntervalMs` the node sends `POST /v1/gateway/heartbeat` (a signed Heartbeat
 *    whose payload is a `HeartbeatDetails`). A 404 with code `unknown_instance` means "register
 *    again" (the gateway restarted or dropped the instance).
 * 3. The gateway forwards consumer requests to the node's `/v1/chat/completions` with
 *    `Authorization: Bearer <link token>` and `x-gbt-request-id`. Only such requests are pooled
 *    traffic: the node signs a UsageReceipt for each one it completes and hands it back in the
 *    response: a `x-gbt-receipt` header (base64url JSON) on whole responses, and one SSE comment
 *    line `: gbt-receipt <JSON>` just before `data: [DONE]` on streams. The gateway strips both
 *    before the consumer sees the response.
 */
import { z } from "zod";
import { address, boundedText, chainId, identifier, uint32 } from "./primitives.js";

export const GATEWAY_INFO_PATH = "/v1/gateway/info";
export const GATEWAY_REGISTER_PATH = "/v1/gateway/register";
export const GATEWAY_HEARTBEAT_PATH = "/v1/gateway/heartbeat";
/** Header carrying the gateway's request id on forwarded requests (the receipt's requestId). */
export const REQUEST_ID_HEADER = "x-gbt-request-id";
/** Header carrying the base64url JSON of the signed receipt on a whole (non-streamed) response. */
export const RECEIPT_HEADER = "x-gbt-receipt";
/** The SSE comment line carrying the signed receipt on a stream (followed by JSON and a blank line). */
export const RECEIPT_SSE_PREFIX = ": gbt-receipt ";
/** Heartbeats are expected this often unless the gateway says otherwise. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** Lifetime of a registration or heartbeat signature. */
export const LINK_SIGNATURE_TTL_SECONDS = 60;
/** Lifetime of a usage receipt signature: the gateway verifies it off the request path. */
export const RECEIPT_TTL_SECONDS = 600;

/** `GET /v1/gateway/info`. */
export const gatewayInfoSchema = z.strictObject({
  address,
  chainId,
  heartbeatIntervalMs: z.number().int().min(100).max(600_000),
});
export type GatewayInfo = z.infer<typeof gatewayInfoSchema>;

/**
 * What a node's backend can do with one model (the node's `ModelCapabilities`), signed with its
 * registration: the gateway routes a request only to instances whose model has what it needs.
 * Absent (a node from before capabilities): chat only.
 */
export const modelCapabilitiesSchema = z.strictObject({
  chat: z.boolean(),
  tools: z.boolean(),
  jsonSchema: z.boolean(),
  embeddings: z.boolean(),
  vision: z.boolean(),
  logprobs: z.boolean(),
  completions: z.boolean(),
  /** The context the node serves the model with, in tokens. */
  contextLength: z.number().int().min(1).max(16_777_216).optional(),
  /** The length of the model's embedding vectors. */
  embeddingDimensions: z.number().int().min(1).max(65_536).optional(),
});
export type ModelCapabilitiesDetails = z.infer<typeof modelCapabilitiesSchema>;

const modelEntry = z.strictObject({
  id: identifier(256),
  /** sha256 of the GGUF or the backend's own digest, when known. */
  digest: boundedText(160).optional(),
  capabilities: modelCapabilitiesSchema.optional(),
});

/** The most owners a node publishes (its config holds as many). */
export const MAX_PUBLISHED_OWNERS = 32;

/** The addresses allowed to sign the node's jobs, as it publishes them to its gateway. */
const publishedOwners = z.array(address).max(MAX_PUBLISHED_OWNERS);

/** The payload of a NodeRegistration. */
export const registrationDetailsSchema = z.strictObject({
  models: z.array(modelEntry).min(1).max(256),
  backend: z.strictObject({ kind: identifier(32), version: boundedText(64).optional() }),
  /** The node's latest signed BenchmarkRecord (JSON as signed), or null when it has none. */
  benchmark: z.unknown().nullable(),
  /** Who may sign jobs for this node; absent or empty: the gateway relays it no job. */
  owners: publishedOwners.optional(),
  /**
   * Ask the gateway to check that it reaches the node's URL (`GET /healthz` answered as a gbt node
   * does) before it registers it; refused with 502 `node_unreachable` otherwise (`link.mode: auto`
   * then joins over the outbound link).
   */
  probe: z.boolean().optional(),
});
export type RegistrationDetails = z.infer<typeof registrationDetailsSchema>;

/** The answer to a registration. */
export const registrationResponseSchema = z.strictObject({
  instanceId: identifier(128),
  /** Secret the gateway presents as `Authorization: Bearer …` on forwarded requests. */
  linkToken: z.string().min(32).max(256),
  heartbeatIntervalMs: z.number().int().min(100).max(600_000),
});
export type RegistrationResponse = z.infer<typeof registrationResponseSchema>;

/** The payload of a Heartbeat. */
export const heartbeatDetailsSchema = z.strictObject({
  models: z.array(identifier(256)).min(1).max(256),
  capacity: uint32,
  health: z.strictObject({ ok: z.boolean(), detail: boundedText(256).optional() }),
  /** The owners now (they change with owner.add and owner.remove jobs); absent: unchanged. */
  owners: publishedOwners.optional(),
});
export type HeartbeatDetails = z.infer<typeof heartbeatDetailsSchema>;

/** The payload of a UsageReceipt: the node's own timings, for later verification. */
export const receiptTimingsSchema = z.strictObject({
  stream: z.boolean(),
  finishReason: identifier(32),
  /**
   * Where the token counts come from: the backend's own usage (absent: the same), or the node's
   * estimate when an OpenAI-compatible server reported none (a quarter of the characters for the
   * prompt, one token per streamed content event or per four characters of a whole answer).
   */
  usage: z.enum(["backend", "estimate"]).optional(),
  backend: z
    .strictObject({
      promptMs: z.number().min(0),
      decodeMs: z.number().min(0),
      source: identifier(64),
    })
    .nullable(),
});
export type ReceiptTimings = z.infer<typeof receiptTimingsSchema>;

/*
 * The outbound link: for a node the gateway cannot connect to (behind NAT, no open port).
 *
 * 1. The node dials the gateway: `GET /v1/gateway/link` with `Connection: Upgrade`,
 *    `Upgrade: gbt-link/1`, its address in `x-gbt-node` and a fresh 32-byte challenge in
 *    `x-gbt-link-challenge`. The gateway answers `101 Switching Protocols` with its info
 *    (`x-gbt-gateway-info`, base64url JSON of a GatewayInfo) and a LinkAccept it signed over the
 *    challenge (`x-gbt-link-accept`, base64url JSON): the node checks the signer against the gateway
 *    address it expects (or pins it on first use) before it sends anything else.
 * 2. The connection then carries HTTP/2 with the roles reversed: the gateway is the client, the
 *    node the server. HTTP/2 gives the multiplexing, per-stream flow control and cancellation
 *    (RST_STREAM).
 * 3. The gateway opens one control stream, `POST /_gbt/link/control`, full duplex: the node writes
 *    its signed NodeRegistration (url `gbt-link:`) and Heartbeats as JSON lines
 *    `{ "id", "op": "register" | "heartbeat", "body" }`; the gateway answers each on its side with
 *    `{ "id", "status", "body" }`, the same status and JSON as the HTTP routes.
 * 4. Every request to the node (consumer traffic, challenges, relayed jobs) is one CONNECT stream
 *    carrying one HTTP/1.1 exchange to the node's own server, exactly as a direct connection
 *    would: the node's routes, link token checks and receipts are the same on both paths.
 * A node reconnecting under the same key replaces its old link at the moment its registration on
 * the new one is accepted; the old connection is closed then.
 */
export const GATEWAY_LINK_PATH = "/v1/gateway/link";
export const LINK_UPGRADE_PROTOCOL = "gbt-link/1";
export const LINK_NODE_HEADER = "x-gbt-node";
export const LINK_CHALLENGE_HEADER = "x-gbt-link-challenge";
export const LINK_ACCEPT_HEADER = "x-gbt-link-accept";
export const LINK_INFO_HEADER = "x-gbt-gateway-info";
/** The URL a node registered over its outbound link signs: it is reached over the link only. */
export const LINK_NODE_URL = "gbt-link:";
export const LINK_CONTROL_PATH = "/_gbt/link/control";
/** The `:authority` of the CONNECT streams the gateway opens to the node. */
export const LINK_TUNNEL_AUTHORITY = "node.gbt-link";
/** The longest control line either side accepts. */
export const LINK_MAX_CONTROL_LINE_BYTES = 1024 * 1024;
/** Lifetime of a LinkAccept signature. */
export const LINK_ACCEPT_TTL_SECONDS = 60;

/** One control message from the node. */
export const linkControlRequestSchema = z.strictObject({
  id: uint32,
  op: z.enum(["register", "heartbeat"]),
  body: z.unknown(),
});
export type LinkControlRequest = z.infer<typeof linkControlRequestSchema>;

/** The gateway's answer to one control message. */
export const linkControlReplySchema = z.strictObject({
  id: uint32,
  status: z.number().int().min(100).max(599),
  body: z.unknown(),
});
export type LinkControlReply = z.infer<typeof linkControlReplySchema>;
