/** One line at the bottom: which node, its mode, the agent connection, the planning model, and what is running. */
import { Box, Text } from "ink";
import type { AgentConnection } from "../../events.js";

export interface StatusBarProps {
  node: string;
  mode?: string | undefined;
  connection: AgentConnection;
  planner: string;
  busy?: string | undefined;
}

const connectionColor: Record<AgentConnection["state"], string> = {
  connecting: "yellow",
  connected: "green",
  unreachable: "red",
  incompatible: "red",
};

export function StatusBar({ node, mode, connection, planner, busy }: StatusBarProps) {
  const agent =
    connection.state === "connected"
      ? `agent ● v${connection.allowlistVersion ?? "?"}`
      : `agent ○ ${connection.state}`;
  return (
    <Box flexDirection="column">
      {busy ? <Text color="yellow">⋯ {busy}</Text> : null}
      <Box>
        <Text inverse wrap="truncate-end">
          {` node ${node.slice(0, 6)}…${node.slice(-4)} │ mode ${mode ?? "?"} │ `}
          <Text color={connectionColor[connection.state]}>{agent}</Text>
          {` │ planner ${planner} `}
        </Text>
      </Box>
    </Box>
  );
}
