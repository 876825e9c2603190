/** One entry of the transcript: who said it, and its lines in the entry's tone. */
import { Box, Text } from "ink";
import type { TranscriptItem } from "../../view-state.js";

const prefix: Record<TranscriptItem["kind"], string> = {
  user: "you ›",
  reply: "operator ›",
  explanation: "facts ›",
  plan: "plan ›",
  dropped: "dropped ›",
  declined: "rejected ›",
  signed: "signed ›",
  result: "result ›",
  error: "error ›",
  info: "·",
};

const toneColor = { ok: "green", bad: "red", muted: "gray" } as const;

export function TranscriptItemView({ item }: { item: TranscriptItem }) {
  const color = item.tone ? toneColor[item.tone] : item.kind === "user" ? "cyan" : undefined;
  const [first = "", ...rest] = item.lines;
  const tone = color ? { color } : {};
  return (
    <Box flexDirection="column">
      <Text wrap="wrap">
        <Text {...tone} bold>
          {prefix[item.kind]}
        </Text>{" "}
        <Text {...tone}>{first}</Text>
      </Text>
      {rest.map((line, index) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: lines of one entry never reorder
        <Box key={index} paddingLeft={2}>
          <Text {...tone} wrap="wrap">
            {line}
          </Text>
        </Box>
      ))}
    </Box>
  );
}
