/**
 * A one-line editor on Ink's input: printable characters (pasted text included) are appended,
 * Backspace deletes, Ctrl-U clears, Enter submits, Esc cancels. Control characters never reach
 * the value. The value and the options live in refs updated at render, and the input handler stays
 * subscribed: keys that arrive between a render and its effects (a fast typist, a paste, a test)
 * still see every earlier key and the current focus.
 */
import { useInput } from "ink";
import { useCallback, useRef, useState } from "react";

export interface LineEditorOptions {
  /** Whether keys go to this editor now. */
  active: boolean;
  onSubmit: (value: string) => void;
  onCancel?: () => void;
  maxLength?: number;
}

export interface LineEditor {
  value: string;
  set: (value: string) => void;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export function useLineEditor(options: LineEditorOptions): LineEditor {
  const maxLength = options.maxLength ?? 2000;
  const [value, setValue] = useState("");
  const current = useRef("");
  const latest = useRef(options);
  latest.current = options;
  const set = useCallback(
    (next: string) => {
      current.current = next.replace(CONTROL, "").slice(0, maxLength);
      setValue(current.current);
    },
    [maxLength],
  );
  useInput((input, key) => {
    const { active, onSubmit, onCancel } = latest.current;
    if (!active) return;
    if (key.return) {
      const submitted = current.current;
      set("");
      onSubmit(submitted);
      return;
    }
    if (key.escape) {
      set("");
      onCancel?.();
      return;
    }
    if (key.backspace || key.delete) {
      set(current.current.slice(0, -1));
      return;
    }
    if (key.ctrl && input === "u") {
      set("");
      return;
    }
    if (key.ctrl || key.meta || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.tab)
      return;
    // A terminal may deliver typed text and its Enter in one chunk ("status\r"): submit at the line break.
    const lineBreak = input.search(/[\r\n]/);
    if (lineBreak >= 0) {
      const submitted = (current.current + input.slice(0, lineBreak).replace(CONTROL, "")).slice(
        0,
        maxLength,
      );
      set("");
      onSubmit(submitted);
      return;
    }
    const text = input.replace(CONTROL, "");
    if (text !== "") set(current.current + text);
  });
  return { value, set };
}
