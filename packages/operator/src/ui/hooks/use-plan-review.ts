/**
 * Keys of the plan panel: ↑/↓ select a proposal, `a` approves, `r` rejects, `e` edits its params.
 * Like the line editor, it stays subscribed and reads its options from a ref set at render.
 */
import { useInput } from "ink";
import { useEffect, useRef, useState } from "react";

export interface PlanReviewOptions {
  active: boolean;
  count: number;
  onApprove: (index: number) => void;
  onReject: (index: number) => void;
  onEdit: (index: number) => void;
}

export function usePlanReview(options: PlanReviewOptions): number {
  const { count } = options;
  const [selected, setSelectedState] = useState(0);
  const selectedRef = useRef(0);
  const setSelected = (index: number) => {
    selectedRef.current = index;
    setSelectedState(index);
  };
  const latest = useRef(options);
  latest.current = options;
  useEffect(() => {
    if (selected >= count) {
      selectedRef.current = Math.max(0, count - 1);
      setSelectedState(selectedRef.current);
    }
  }, [count, selected]);
  useInput((input, key) => {
    const { active, count, onApprove, onReject, onEdit } = latest.current;
    if (!active || count === 0) return;
    const index = Math.min(selectedRef.current, count - 1);
    if (key.upArrow) setSelected(Math.max(0, index - 1));
    else if (key.downArrow) setSelected(Math.min(count - 1, index + 1));
    else if (input === "a" || input === "y") onApprove(index);
    else if (input === "r" || input === "n") onReject(index);
    else if (input === "e") onEdit(index);
  });
  return Math.min(selected, Math.max(0, count - 1));
}
