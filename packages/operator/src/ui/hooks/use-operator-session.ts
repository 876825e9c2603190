/** Subscribes to a session, reduces its events into the view state, and connects to the agent once. */
import { useEffect, useReducer } from "react";
import type { OperatorSession } from "../../operator-session.js";
import { initialViewState, type OperatorViewState, reduceView } from "../../view-state.js";

export function useOperatorSession(
  session: OperatorSession,
  nodeUrl: string,
  welcome: string[] = [],
): OperatorViewState {
  const [state, dispatch] = useReducer(reduceView, undefined, () => initialViewState(nodeUrl, welcome));
  useEffect(() => {
    const unsubscribe = session.subscribe(dispatch);
    void session.connect();
    return unsubscribe;
  }, [session]);
  return state;
}
