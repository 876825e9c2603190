/**
 * What a request needs of the model instance that serves it, and whether an instance has it. A node
 * advertises per model what its backend can do (its signed registration); the gateway routes a
 * request only to instances whose model has every capability the request needs. The pool holds
 * them as bit masks (one per instance and model, on its heap membership), so the pick tests a
 * request's needs with one AND.
 */
import type { ModelCapabilitiesDetails } from "@gbt/protocol";

/** One thing a model on a node can do (the node's `ModelCapabilities`, by name). */
export type Capability =
  | "chat"
  | "tools"
  | "jsonSchema"
  | "embeddings"
  | "vision"
  | "logprobs"
  | "completions";

/** The consumer routes the gateway forwards to nodes. */
export type ConsumerRoute = "chat" | "completions" | "embeddings" | "responses";

/** Every capability, in the order of their bits. */
export const CAPABILITIES: readonly Capability[] = [
  "chat",
  "tools",
  "jsonSchema",
  "embeddings",
  "vision",
  "logprobs",
  "completions",
];

const BIT: Record<Capability, number> = {
  chat: 1,
  tools: 2,
  jsonSchema: 4,
  embeddings: 8,
  vision: 16,
  logprobs: 32,
  completions: 64,
};

/** The mask of an instance's model that registered without capabilities: chat only. */
export const CHAT_ONLY_MASK = BIT.chat;

/** The capabilities of a model as a bit mask (absent: chat only). */
export function capabilityMask(capabilities: ModelCapabilitiesDetails | undefined): number {
  if (capabilities === undefined) return CHAT_ONLY_MASK;
  let mask = 0;
  for (const name of CAPABILITIES) if (capabilities[name]) mask |= BIT[name];
  return mask;
}

/** The mask of what a request needs (each list is a small constant). */
export function needsMask(needs: readonly Capability[] | undefined): number {
  if (needs === undefined) return CHAT_ONLY_MASK;
  let mask = 0;
  for (const need of needs) mask |= BIT[need];
  return mask;
}

/** The capabilities of a mask, by name. */
export function capabilitiesOf(mask: number): Capability[] {
  return CAPABILITIES.filter((name) => (mask & BIT[name]) !== 0);
}

/**
 * The capabilities a request needs, from its route and its parsed JSON body (the fields that change
 * the answer: tools with a choice other than `none`, a structured response_format or text.format,
 * image parts, logprobs). Cheap: called once per request on the hot path; a plain chat request
 * allocates nothing.
 */
export function requestNeeds(route: ConsumerRoute, body: Record<string, unknown>): readonly Capability[] {
  switch (route) {
    case "embeddings":
      return EMBEDDINGS;
    case "completions":
      return body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false
        ? COMPLETIONS_LOGPROBS
        : COMPLETIONS;
    case "responses":
      return needsOf(
        "chat",
        usesTools(body.tools, body.tool_choice),
        isStructured((body.text as { format?: unknown } | null | undefined)?.format),
        hasImage(body.input, "input_image"),
        body.top_logprobs !== undefined && body.top_logprobs !== null,
      );
    default:
      return needsOf(
        "chat",
        usesTools(body.tools, body.tool_choice),
        isStructured(body.response_format),
        hasImage(body.messages, "image_url"),
        body.logprobs === true || (body.top_logprobs !== undefined && body.top_logprobs !== null),
      );
  }
}

function needsOf(
  base: Capability,
  tools: boolean,
  jsonSchema: boolean,
  vision: boolean,
  logprobs: boolean,
): readonly Capability[] {
  if (!tools && !jsonSchema && !vision && !logprobs) return CHAT;
  const needs: Capability[] = [base];
  if (tools) needs.push("tools");
  if (jsonSchema) needs.push("jsonSchema");
  if (vision) needs.push("vision");
  if (logprobs) needs.push("logprobs");
  return needs;
}

/** Tools offered with a choice other than `none`. */
function usesTools(tools: unknown, choice: unknown): boolean {
  return Array.isArray(tools) && tools.length > 0 && choice !== "none";
}

/** A response_format (or text.format) that constrains the output: json_object or json_schema. */
function isStructured(format: unknown): boolean {
  const type = (format as { type?: unknown } | null | undefined)?.type;
  return type === "json_object" || type === "json_schema";
}

/** Whether some message (or input item) holds a content part of type `partType`. */
function hasImage(items: unknown, partType: string): boolean {
  if (!Array.isArray(items)) return false;
  for (const item of items) {
    const content = (item as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const part of content) if ((part as { type?: unknown } | null)?.type === partType) return true;
  }
  return false;
}

const CHAT: readonly Capability[] = ["chat"];
const EMBEDDINGS: readonly Capability[] = ["embeddings"];
const COMPLETIONS: readonly Capability[] = ["completions"];
const COMPLETIONS_LOGPROBS: readonly Capability[] = ["completions", "logprobs"];
