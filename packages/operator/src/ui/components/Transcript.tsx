/**
 * The conversation so far. Entries are written once with Ink's <Static> (as gemini-cli does), so
 * they land in the terminal's own scrollback: scroll up with the terminal, at any size.
 */
import { Static } from "ink";
import type { TranscriptItem } from "../../view-state.js";
import { TranscriptItemView } from "./TranscriptItemView.js";

export function Transcript({ items }: { items: TranscriptItem[] }) {
  return <Static items={items}>{(item) => <TranscriptItemView key={item.id} item={item} />}</Static>;
}
