/**
 * The consumer API beside the hot path: `GET /v1/models` (API key), the models some active node
 * serves, each with what its live nodes can do together: gbt's `capabilities` (the union of their
 * signed ones), the request parameters that follows (`supported_parameters`, OpenRouter's names,
 * so that clients choosing a model by feature work unchanged) and the largest `context_length`.
 */
import { gatewayPaths, type ListedModel } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import { CAPABILITIES, type Capability, CHAT_ONLY_MASK, capabilitiesOf } from "../../pool/capabilities.js";
import type { InstancePool, ModelCapabilitySummary } from "../../pool/instance-pool.js";
import { named } from "../gateway-app.js";
import type { GatewayEnv, GatewayRoutes } from "../gateway-env.js";

/** What every generating model honours (chat or completions). */
const SAMPLING_PARAMETERS = [
  "max_tokens",
  "temperature",
  "top_p",
  "stop",
  "seed",
  "presence_penalty",
  "frequency_penalty",
] as const;

/** The parameters each capability adds. */
const PARAMETERS_OF: Partial<Record<Capability, readonly string[]>> = {
  tools: ["tools", "tool_choice"],
  jsonSchema: ["response_format", "structured_outputs"],
  logprobs: ["logprobs", "top_logprobs"],
};

/** The OpenRouter-style parameter list of a capability mask. */
export function supportedParameters(mask: number): string[] {
  const has = new Set(capabilitiesOf(mask));
  const out: string[] = [];
  if (has.has("chat") || has.has("completions")) out.push(...SAMPLING_PARAMETERS);
  for (const capability of CAPABILITIES)
    if (has.has(capability)) out.push(...(PARAMETERS_OF[capability] ?? []));
  return out;
}

/** One model's entry of the list. */
export function listedModel(id: string, summary: ModelCapabilitySummary | undefined): ListedModel {
  const mask = summary?.mask ?? CHAT_ONLY_MASK;
  const has = new Set(capabilitiesOf(mask));
  const capabilities: ListedModel["capabilities"] = {
    chat: has.has("chat"),
    tools: has.has("tools"),
    jsonSchema: has.has("jsonSchema"),
    embeddings: has.has("embeddings"),
    vision: has.has("vision"),
    logprobs: has.has("logprobs"),
    completions: has.has("completions"),
    ...(summary?.contextLength != null ? { contextLength: summary.contextLength } : {}),
    ...(summary?.embeddingDimensions != null ? { embeddingDimensions: summary.embeddingDimensions } : {}),
  };
  return {
    id,
    object: "model",
    created: 0,
    owned_by: "gbt",
    supported_parameters: supportedParameters(mask),
    capabilities,
    context_length: summary?.contextLength ?? null,
  };
}

export function consumerRoutes(parts: {
  pool: Pick<InstancePool, "activeModels" | "modelCapabilities">;
  apiKey: MiddlewareHandler<GatewayEnv>;
}): GatewayRoutes {
  return new Hono<GatewayEnv>().get(gatewayPaths.models, named("models"), parts.apiKey, (c) =>
    c.json({
      object: "list",
      data: parts.pool.activeModels().map((id) => listedModel(id, parts.pool.modelCapabilities(id))),
    }),
  );
}
