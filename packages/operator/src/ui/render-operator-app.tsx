/** Renders the Operator app on the terminal and resolves when the admin leaves (Ctrl-C). */
import { render } from "ink";
import type { OperatorSession } from "../operator-session.js";
import { OperatorApp } from "./OperatorApp.js";

export interface RunOperatorAppOptions {
  session: OperatorSession;
  nodeUrl: string;
  mode?: string | undefined;
  welcome?: string[];
}

export async function runOperatorApp(options: RunOperatorAppOptions): Promise<void> {
  const instance = render(
    <OperatorApp
      session={options.session}
      nodeUrl={options.nodeUrl}
      mode={options.mode}
      welcome={options.welcome ?? []}
    />,
    { exitOnCtrlC: true, patchConsole: true },
  );
  try {
    await instance.waitUntilExit();
  } finally {
    instance.cleanup();
    await options.session.close();
  }
}
