/**
 * The response bodies of a node's `/v1/models` and `/healthz`, as the node writes them and clients
 * (the gateway, `gbt status`, benchmarks) read them.
 */
import { z } from "zod";
import { modelCapabilitiesSchema } from "../../gateway-link.js";

/** One model of `GET /v1/models`: OpenAI's model object, with the GGUF's sha256 when the node knows it. */
export const nodeModelSchema = z.object({
  id: z.string().min(1).max(256),
  object: z.literal("model"),
  created: z.number().int().min(0),
  owned_by: z.string().max(64),
  /** `sha256:…` of the model file, when the backend reports one. */
  digest: z.string().max(128).optional(),
  /** What the model can do on this node (tools, structured output, embeddings…); absent: chat only. */
  capabilities: modelCapabilitiesSchema.optional(),
});
export type NodeModel = z.infer<typeof nodeModelSchema>;

/** `GET /v1/models`. */
export const nodeModelListSchema = z.object({
  object: z.literal("list"),
  data: z.array(nodeModelSchema).max(10_000),
});
export type NodeModelList = z.infer<typeof nodeModelListSchema>;

/** `GET /healthz` (200 when ok, 503 otherwise, with this body either way). */
export const nodeHealthSchema = z.object({
  status: z.enum(["ok", "draining", "backend_unhealthy"]),
  /** Whether the node takes no new requests (drained by its owner, or shutting down). */
  draining: z.boolean(),
  /** The backend's kind, location and its own health report (`ok` and backend-specific fields). */
  backend: z.looseObject({ kind: z.string(), location: z.string(), ok: z.boolean() }),
  inFlight: z.number().int().min(0),
  capacity: z.number().int().min(0),
});
export type NodeHealth = z.infer<typeof nodeHealthSchema>;
