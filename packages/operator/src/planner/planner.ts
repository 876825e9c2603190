/**
 * What every planner does: turn the admin's message into a short reply and raw job proposals
 * from the allowlist. Planners are untrusted (an LLM's output is data, not instructions): the
 * session parses every proposal with the agent's schemas before the admin ever sees it.
 */
import type { ErrorCode, PublishedAllowlist } from "@gbt/protocol";
import type { Address } from "viem";
import type { Fact } from "../facts.js";
import type { RawProposal } from "../proposal.js";

export interface ChatTurn {
  role: "user" | "assistant";
  content: string;
}

export interface PlanningContext {
  message: string;
  /** Earlier turns, oldest first (bounded by the session). */
  history: readonly ChatTurn[];
  /** The job types the node's agent accepts, given to LLMs as tools. */
  allowlist: PublishedAllowlist;
  node: Address;
  /** What is known about the node, with sources. */
  facts: readonly Fact[];
  signal?: AbortSignal;
}

export interface PlannerReply {
  /** Text for the admin (may be empty when proposals say it all). */
  say: string;
  proposals: RawProposal[];
  /** Facts the admin asked to have explained: the session fetches and quotes them. */
  explain?: ("gateway" | "status" | "earnings")[];
  /** Planner-level problems with the model's answer (unparseable tool arguments…), shown as drops. */
  malformed?: { tool?: string; code: ErrorCode; message: string }[];
}

export interface Planner {
  /** Shown in the status bar: `offline`, `openai gpt-4o-mini`, … (short: the bar fits 80 columns). */
  readonly label: string;
  /** Where the model runs (a URL or a GGUF path), shown once at the start. */
  readonly endpoint?: string;
  /** `llm` planners get fresh facts (the gateway view) with each message; `rules` planners do not read them. */
  readonly kind: "rules" | "llm";
  plan(context: PlanningContext): Promise<PlannerReply>;
  close?(): Promise<void>;
}
