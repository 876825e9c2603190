/**
 * Test wiring shared by the Operator's tests: a real agent on loopback, an owner key whose use is
 * counted, and a session on them with any planner.
 */
import { createAgentClient } from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { EarningsViewSource } from "../earnings-view.js";
import type { OperatorEvent } from "../events.js";
import type { GatewayViewSource } from "../gateway-view.js";
import { createOperatorSession, type OperatorSession } from "../operator-session.js";
import type { Planner } from "../planner/planner.js";
import { startTestAgentServer, type TestAgentServer } from "./agent-server.js";

export interface SessionFixture {
  agent: TestAgentServer;
  owner: LocalAccount;
  /** How many times the owner key was asked for (only approvals may ask). */
  signerCalls: () => number;
  session: OperatorSession;
  events: OperatorEvent[];
  close(): Promise<void>;
}

export async function sessionFixture(
  planner: Planner,
  options: {
    owners?: Address[];
    publishedVersion?: number;
    publishedNode?: Address;
    gateway?: GatewayViewSource;
    earnings?: EarningsViewSource;
    nodeUrl?: string;
  } = {},
): Promise<SessionFixture> {
  const owner = privateKeyToAccount(generatePrivateKey());
  const agent = await startTestAgentServer({
    owners: options.owners ?? [owner.address],
    ...(options.publishedVersion === undefined ? {} : { publishedVersion: options.publishedVersion }),
    ...(options.publishedNode === undefined ? {} : { publishedNode: options.publishedNode }),
  });
  let calls = 0;
  const session = createOperatorSession({
    agent: createAgentClient({ url: options.nodeUrl ?? agent.url, pollIntervalMs: 10 }),
    planner,
    node: { address: agent.node.address, chainId: agent.chainId },
    signer: async () => {
      calls += 1;
      return owner;
    },
    ...(options.gateway ? { gateway: options.gateway } : {}),
    ...(options.earnings ? { earnings: options.earnings } : {}),
  });
  const events: OperatorEvent[] = [];
  session.subscribe((event) => events.push(event));
  return {
    agent,
    owner,
    signerCalls: () => calls,
    session,
    events,
    async close() {
      await session.close();
      await agent.close();
    },
  };
}
