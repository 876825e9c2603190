/**
 * The TUI's state as a pure reduction of the session's events: the transcript (what scrolls),
 * the pending plan, what is running, the agent connection and the node's mode. Kept apart from
 * React so it is tested as plain data.
 */
import type { AgentConnection, OperatorEvent } from "./events.js";
import { modeFromStatus, shortId } from "./facts.js";
import { type ProposedJob, printable } from "./proposal.js";

export type TranscriptKind =
  | "user"
  | "reply"
  | "explanation"
  | "plan"
  | "dropped"
  | "declined"
  | "signed"
  | "result"
  | "error"
  | "info";

export interface TranscriptItem {
  id: number;
  kind: TranscriptKind;
  lines: string[];
  tone?: "ok" | "bad" | "muted";
}

export interface OperatorViewState {
  items: TranscriptItem[];
  pending: ProposedJob[];
  /** What the Operator is doing now (planning, running a job), for the status line. */
  busy?: string;
  connection: AgentConnection;
  mode?: string;
}

export function initialViewState(nodeUrl: string, welcome: string[] = []): OperatorViewState {
  return {
    items: welcome.length > 0 ? [{ id: 0, kind: "info", lines: welcome, tone: "muted" }] : [],
    pending: [],
    connection: { state: "connecting", nodeUrl },
  };
}

const paramsText = (params: Record<string, unknown>) =>
  Object.keys(params).length === 0 ? "{}" : JSON.stringify(params);

export function reduceView(state: OperatorViewState, event: OperatorEvent): OperatorViewState {
  const add = (kind: TranscriptKind, lines: string[], tone?: TranscriptItem["tone"]): TranscriptItem[] => [
    ...state.items,
    { id: (state.items.at(-1)?.id ?? 0) + 1, kind, lines, ...(tone ? { tone } : {}) },
  ];
  const { busy: _busy, ...idle } = state;
  switch (event.type) {
    case "agent":
      return {
        ...state,
        connection: event.connection,
        ...(event.connection.state === "connected"
          ? {}
          : {
              items: add(
                "error",
                [`agent ${event.connection.state}: ${event.connection.message ?? ""}`],
                "bad",
              ),
            }),
      };
    case "user":
      return { ...state, items: add("user", [event.text]) };
    case "thinking":
      return { ...state, busy: `planning with ${event.planner}…` };
    case "reply":
      return {
        ...idle,
        items: add("reply", [
          event.text,
          ...(event.sources.length > 0 ? [`(facts from ${event.sources.join("; ")})`] : []),
        ]),
      };
    case "explanation":
      return {
        ...idle,
        items: add(
          "explanation",
          event.facts.length === 0
            ? ["No facts yet."]
            : event.facts.flatMap((fact) => [
                `According to ${fact.source}:`,
                ...fact.lines.map((l) => `  • ${l}`),
              ]),
        ),
      };
    case "plan":
      return {
        ...idle,
        pending: [...state.pending, event.proposal],
        items: add(
          "plan",
          [`proposed ${event.proposal.type} ${paramsText(event.proposal.params)} (${event.proposal.risk})`],
          "muted",
        ),
      };
    case "dropped":
      return {
        ...idle,
        items: add(
          "dropped",
          [
            `dropped a proposal (${event.dropped.type}): ${event.dropped.reason.message} [${event.dropped.reason.code}]; it will not be signed`,
          ],
          "bad",
        ),
      };
    case "declined":
      return {
        ...state,
        pending: state.pending.filter((p) => p.id !== event.proposalId),
        items: add("declined", [`rejected ${event.jobType}; nothing was signed`], "muted"),
      };
    case "edited":
      return {
        ...state,
        pending: state.pending.map((p) => (p.id === event.proposal.id ? event.proposal : p)),
        items: add("info", [`edited ${event.proposal.type}: ${paramsText(event.proposal.params)}`], "muted"),
      };
    case "edit_rejected":
      return {
        ...state,
        items: add(
          "error",
          [
            `edit not applied: ${printable(event.error.message, 300)} [${event.error.code}]; the proposal is unchanged`,
          ],
          "bad",
        ),
      };
    case "signed":
      return {
        ...state,
        pending: state.pending.filter((p) => p.id !== event.proposalId),
        busy: `running ${event.jobType} (job ${shortId(event.jobId)})…`,
        items: add(
          "signed",
          [
            `signed ${event.jobType} as ${shortId(event.issuer)} → job ${shortId(event.jobId)} sent to the agent`,
          ],
          "muted",
        ),
      };
    case "progress":
      return { ...state, busy: `${event.state}: job ${shortId(event.jobId)}…` };
    case "result": {
      const mode = event.jobType === "status.read" ? modeFromStatus(event.output) : undefined;
      return {
        ...idle,
        ...(mode ? { mode } : {}),
        items: add("result", event.summary, event.state === "succeeded" ? "ok" : "bad"),
      };
    }
    case "error":
      return {
        ...idle,
        pending: event.proposalId ? state.pending.filter((p) => p.id !== event.proposalId) : state.pending,
        items: add(
          "error",
          [
            `${event.error.code}: ${printable(event.error.message, 300)}`,
            ...(event.error.hint ? [`→ ${event.error.hint}`] : []),
          ],
          "bad",
        ),
      };
  }
}
