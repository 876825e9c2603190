/**
 * `gbt operator`: transcript (in the terminal's scrollback), the pending plan, the input line and
 * the status bar. Presentational components and hooks; the session does the work. While a plan is
 * pending its keys have the focus; `e` turns the input line into an editor of the selected job's
 * parameters. Ctrl-C exits (Ink restores the terminal).
 */
import { Box } from "ink";
import { useState } from "react";
import type { OperatorSession } from "../operator-session.js";
import { InputLine } from "./components/InputLine.js";
import { PlanPanel } from "./components/PlanPanel.js";
import { StatusBar } from "./components/StatusBar.js";
import { Transcript } from "./components/Transcript.js";
import { useLineEditor } from "./hooks/use-line-editor.js";
import { useOperatorSession } from "./hooks/use-operator-session.js";
import { usePlanReview } from "./hooks/use-plan-review.js";

export interface OperatorAppProps {
  session: OperatorSession;
  nodeUrl: string;
  /** The node's mode when known before any status.read (from the local config). */
  mode?: string | undefined;
  welcome?: string[];
}

export function OperatorApp({ session, nodeUrl, mode, welcome = [] }: OperatorAppProps) {
  const state = useOperatorSession(session, nodeUrl, welcome);
  const [editing, setEditing] = useState<string | undefined>();
  const busy = state.busy !== undefined;
  const reviewing = state.pending.length > 0 && editing === undefined && !busy;

  const editor = useLineEditor({
    active: !busy && (editing !== undefined || state.pending.length === 0),
    onSubmit: (text) => {
      if (editing !== undefined) {
        session.editParams(editing, text);
        setEditing(undefined);
      } else if (text.trim() !== "") {
        void session.ask(text);
      }
    },
    onCancel: () => setEditing(undefined),
  });

  const selected = usePlanReview({
    active: reviewing,
    count: state.pending.length,
    onApprove: (index) => {
      const job = state.pending[index];
      // A key repeated before the screen caught up must not approve twice.
      if (job && session.pending().some((p) => p.id === job.id)) void session.approve(job.id);
    },
    onReject: (index) => {
      const job = state.pending[index];
      if (job) session.decline(job.id);
    },
    onEdit: (index) => {
      const job = state.pending[index];
      if (!job) return;
      setEditing(job.id);
      editor.set(JSON.stringify(job.params));
    },
  });

  const editedJob = state.pending.find((job) => job.id === editing);
  return (
    <Box flexDirection="column">
      <Transcript items={state.items} />
      <PlanPanel proposals={state.pending} selected={selected} active={reviewing} />
      {editedJob ? (
        <InputLine
          label={`params of ${editedJob.type} (JSON; Enter saves, Esc cancels) ›`}
          value={editor.value}
          active
        />
      ) : (
        <InputLine
          label="›"
          value={editor.value}
          active={!busy && state.pending.length === 0}
          placeholder={
            state.pending.length > 0
              ? " decide on the plan first (a / r / e)"
              : " ask: status · restart the backend · benchmark · help"
          }
        />
      )}
      <StatusBar
        node={session.node.address}
        mode={state.mode ?? mode}
        connection={state.connection}
        planner={session.plannerLabel}
        busy={state.busy}
      />
    </Box>
  );
}
