/**
 * The Operator's events: what the TUI renders and what headless mode prints, one JSON line each.
 * Plain data only (no functions, no secrets), stable field names.
 */
import type { Fact } from "./facts.js";
import type { DroppedProposal, ProposedJob } from "./proposal.js";

export interface AgentConnection {
  state: "connecting" | "connected" | "unreachable" | "incompatible";
  nodeUrl: string;
  allowlistVersion?: number;
  types?: string[];
  message?: string;
}

export type OperatorEvent =
  | { type: "agent"; connection: AgentConnection }
  | { type: "user"; text: string }
  | { type: "thinking"; planner: string }
  | { type: "reply"; text: string; sources: string[] }
  | { type: "explanation"; facts: Fact[] }
  | { type: "plan"; proposal: ProposedJob }
  | { type: "dropped"; dropped: DroppedProposal }
  | { type: "declined"; proposalId: string; jobType: string }
  | { type: "edited"; proposal: ProposedJob }
  | { type: "edit_rejected"; proposalId: string; error: { code: string; message: string } }
  | { type: "signed"; proposalId: string; jobId: string; jobType: string; issuer: string }
  | { type: "progress"; proposalId: string; jobId: string; state: string }
  | {
      type: "result";
      proposalId: string;
      jobId: string;
      jobType: string;
      state: string;
      code?: string;
      message?: string;
      summary: string[];
      output?: unknown;
    }
  | { type: "error"; error: { code: string; message: string; hint?: string }; proposalId?: string };

export type OperatorEventType = OperatorEvent["type"];
