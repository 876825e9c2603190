/**
 * The wire contract of the gateway's model registry, shared by the gateway and its clients:
 *
 * - `POST /v1/registry/models` with a signed manifest (JSON): 201 when registered, 200 when the
 *   same name@version with the same content is already there (idempotent), 409 `conflict` when
 *   name@version holds other content (a version is immutable). An `Idempotency-Key` header is
 *   accepted and echoed; the content itself is what makes a retry safe.
 * - `GET /v1/registry/models[?status=…&name=…]`: the registry, newest first, without documents.
 * - `GET /v1/registry/models/:name/:version`: one entry with its signed manifest.
 * - `POST /v1/registry/models/:name/:version/approve|delist` (admin token): pending → approved →
 *   delisted; a repeated transition answers 200 unchanged.
 */
import { z } from "zod";
import { modelNameSchema, modelVersionSchema } from "./model-manifest.js";
import { address, boundedText, bytes32 } from "./primitives.js";

export const REGISTRY_MODELS_PATH = "/v1/registry/models";
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
export const registryStatuses = ["pending", "approved", "delisted"] as const;
export type RegistryStatus = (typeof registryStatuses)[number];

/** The path of one registry entry (name and version URL-encoded). */
export function registryModelPath(name: string, version: string): string {
  return `${REGISTRY_MODELS_PATH}/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
}

/** An entry as listed (no document). */
export const registryEntrySchema = z.strictObject({
  name: modelNameSchema,
  version: modelVersionSchema,
  publisher: address,
  manifestHash: bytes32,
  status: z.enum(registryStatuses),
  /** The manifest's own createdAt. */
  createdAt: z.string().max(32),
  /** When the gateway registered it, and when its status last changed (ISO). */
  submittedAt: z.string().max(32),
  statusChangedAt: z.string().max(32),
  statusReason: boundedText(500).nullable(),
  artifacts: z.number().int().min(0),
  sizeBytes: z.number().int().min(0),
});
export type RegistryEntry = z.infer<typeof registryEntrySchema>;

/** One entry with its signed manifest (verify it yourself: the gateway is not trusted for it). */
export const registryModelSchema = registryEntrySchema.extend({ signed: z.unknown() });
export type RegistryModel = z.infer<typeof registryModelSchema>;

export const registryListSchema = z.strictObject({
  object: z.literal("list"),
  data: z.array(registryEntrySchema).max(100_000),
});

/** The answer to a publish: the entry, and whether this call created it. */
export const registrySubmitResponseSchema = z.strictObject({
  created: z.boolean(),
  model: registryModelSchema,
});
export type RegistrySubmitResponse = z.infer<typeof registrySubmitResponseSchema>;
