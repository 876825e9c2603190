/**
 * The service behind `gbt operator`: builds the session (agent client, planner, optional gateway
 * view, the owner key as a signer) and runs it headless (one prompt, events on stdout) or as the
 * Ink app. The CLI command only maps flags to these options.
 */
import { createAgentClient, GbtError } from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import { earningsViewSource } from "./earnings-view.js";
import { gatewayViewSource } from "./gateway-view.js";
import { type HeadlessEvent, runHeadless } from "./headless.js";
import { createOperatorSession, type OperatorSession } from "./operator-session.js";
import { createPlanner, type PlannerChoice } from "./planner/create-planner.js";
import type { Planner } from "./planner/planner.js";
import { initialViewState, reduceView } from "./view-state.js";

export interface RunOperatorOptions {
  nodeUrl: string;
  node: { address: Address; chainId: number };
  /** The node's mode from its local config, when known. */
  mode?: string | undefined;
  planner: PlannerChoice | Planner;
  /** The owner key; called once, at the first approval (or before the app draws, see preloadSigner). */
  signer: () => Promise<LocalAccount>;
  /** Unlock the key before the Ink app draws: a passphrase prompt cannot share its screen, and a missing key fails at once. */
  preloadSigner?: boolean;
  gateway?: { url: string; adminToken: string } | undefined;
  /**
   * Where the node's signed earnings view is read (public, no admin token): default the gateway
   * above. `gatewayAddress`: the gateway key the node pins (node config `link.gatewayAddress`).
   */
  earnings?: { gatewayUrl: string; gatewayAddress?: Address | undefined } | undefined;
  /** Headless: plan this one message. Without it the Ink app runs (a TTY is required). */
  prompt?: string | undefined;
  /** Headless: sign and submit the plan. */
  approve?: boolean;
  /** Headless: JSON lines instead of text. */
  json?: boolean;
  interactive: boolean;
  /** Where results go (stdout). */
  write?: (text: string) => void;
}

/** Runs the Operator; resolves with the process exit code. */
export async function runOperator(options: RunOperatorOptions): Promise<number> {
  if (options.prompt === undefined && !options.interactive) {
    throw new GbtError("MISSING_INPUT", "The Operator's chat needs a terminal, and there is none.", {
      hint: 'Pass --prompt "…" (with --json for JSON lines, and --approve to run the plan) to use it from a script.',
    });
  }
  let signer = options.signer;
  if (options.preloadSigner && options.prompt === undefined) {
    const account = await options.signer();
    signer = async () => account;
  }
  const planner = "plan" in options.planner ? options.planner : createPlanner(options.planner);
  const earningsUrl = options.earnings?.gatewayUrl ?? options.gateway?.url;
  const session = createOperatorSession({
    agent: createAgentClient({ url: options.nodeUrl }),
    planner,
    node: options.node,
    signer,
    ...(options.gateway
      ? {
          gateway: gatewayViewSource({
            gatewayUrl: options.gateway.url,
            adminToken: options.gateway.adminToken,
          }),
        }
      : {}),
    ...(earningsUrl
      ? {
          earnings: earningsViewSource({
            gatewayUrl: earningsUrl,
            gatewayAddress: options.earnings?.gatewayAddress,
          }),
        }
      : {}),
  });
  if (options.prompt === undefined) {
    const { runOperatorApp } = await import("./ui/render-operator-app.js");
    await runOperatorApp({
      session,
      nodeUrl: options.nodeUrl,
      mode: options.mode,
      welcome: [
        `gbt Operator for node ${options.node.address} at ${options.nodeUrl}. It plans; nothing runs until you approve, and every approved job is signed with your owner key.`,
        `Planner: ${planner.label}${planner.endpoint ? ` at ${planner.endpoint}` : " (deterministic rules, no LLM)"}.`,
        "Type a request (e.g. status, restart the backend, benchmark, help) and press Enter. Ctrl-C exits.",
      ],
    });
    return 0;
  }
  return runHeadlessOnce(session, options);
}

async function runHeadlessOnce(session: OperatorSession, options: RunOperatorOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  let view = initialViewState(options.nodeUrl);
  const emit = (event: HeadlessEvent) => {
    if (options.json) {
      write(`${JSON.stringify(event)}\n`);
      return;
    }
    if (event.type === "done") {
      if (event.hint) write(`${event.hint}\n`);
      return;
    }
    const before = view.items.length;
    view = reduceView(view, event);
    for (const item of view.items.slice(before)) {
      if (item.kind === "user") continue;
      write(`${item.kind}: ${item.lines.join("\n  ")}\n`);
    }
  };
  try {
    return await runHeadless({
      session,
      prompt: options.prompt ?? "",
      approve: options.approve ?? false,
      emit,
    });
  } finally {
    await session.close();
  }
}
