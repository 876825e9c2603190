/**
 * The pending plan: every proposed job with its type, parameters, risk and why; the selected one
 * is marked and the keys are listed. Nothing in it has been signed.
 */
import { Box, Text } from "ink";
import type { ProposedJob } from "../../proposal.js";

export interface PlanPanelProps {
  proposals: ProposedJob[];
  selected: number;
  /** Whether the keys act on the plan now (false while a job runs or params are edited). */
  active: boolean;
}

export function PlanPanel({ proposals, selected, active }: PlanPanelProps) {
  if (proposals.length === 0) return null;
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={active ? "yellow" : "gray"} paddingX={1}>
      <Text bold>
        Plan: {proposals.length} job{proposals.length === 1 ? "" : "s"} awaiting your approval (not signed)
      </Text>
      {proposals.map((job, index) => {
        const isSelected = index === selected;
        return (
          <Box key={job.id} flexDirection="column">
            <Text {...(isSelected ? { color: "yellow" } : {})} wrap="truncate-end">
              {isSelected ? "▸ " : "  "}
              {job.type} <Text color={job.risk === "read" ? "green" : "magenta"}>[{job.risk}]</Text>{" "}
              {JSON.stringify(job.params)}
            </Text>
            {isSelected ? (
              <Text color="gray" wrap="wrap">
                {"    why: "}
                {job.why}
              </Text>
            ) : null}
          </Box>
        );
      })}
      <Text color="gray">{active ? "a approve & sign · r reject · e edit params · ↑↓ select" : "…"}</Text>
    </Box>
  );
}
