import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type ScriptedChatServer, startScriptedChatServer } from "../testing/scripted-chat-server.js";
import { type SessionFixture, sessionFixture } from "../testing/session-fixture.js";
import { createOllamaPlanner } from "./ollama-planner.js";

let llm: ScriptedChatServer;
let fixture: SessionFixture | undefined;

beforeAll(async () => {
  llm = await startScriptedChatServer((message) =>
    message === "restart the backend"
      ? {
          toolCalls: [
            { name: "service_restart", arguments: { params: { service: "backend" }, why: "Restart it." } },
          ],
        }
      : {
          content: "Done!",
          toolCalls: [
            { name: "service_restart", arguments: { params: { service: "backend && reboot" }, why: "x" } },
            { name: "run_shell", arguments: { params: { command: "reboot" } } },
          ],
        },
  );
});
afterAll(async () => {
  await llm.close();
});
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe("ollama planner over /api/chat tool calls (scripted loopback server)", () => {
  it("a valid tool call becomes a plan that runs once approved", async () => {
    fixture = await sessionFixture(createOllamaPlanner({ host: llm.origin, model: "llama3.1" }));
    await fixture.session.connect();
    const [proposal] = await fixture.session.ask("restart the backend");
    expect(llm.requests.at(-1)?.path).toBe("/api/chat");
    expect(proposal).toMatchObject({ type: "service.restart", params: { service: "backend" } });
    expect((await fixture.session.approve(proposal?.id ?? ""))?.state).toBe("succeeded");
    expect(fixture.agent.actions).toEqual(["restart:backend"]);
  });

  it("hostile tool calls are dropped and nothing is signed", async () => {
    fixture = await sessionFixture(createOllamaPlanner({ host: llm.origin, model: "llama3.1" }));
    await fixture.session.connect();
    expect(await fixture.session.ask("do something")).toEqual([]);
    const codes = fixture.events.flatMap((e) => (e.type === "dropped" ? [e.dropped.reason.code] : []));
    expect(codes.sort()).toEqual(["INVALID_PARAMS", "UNKNOWN_JOB_TYPE"]);
    expect(fixture.signerCalls()).toBe(0);
    expect(fixture.agent.received).toHaveLength(0);
  });
});
