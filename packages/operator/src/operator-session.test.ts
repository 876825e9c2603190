import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { gatewayViewSource } from "./gateway-view.js";
import { createOfflinePlanner } from "./planner/offline-planner.js";
import { type SessionFixture, sessionFixture } from "./testing/session-fixture.js";

let fixture: SessionFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

const ofType = <T extends string>(f: SessionFixture, type: T) => f.events.filter((e) => e.type === type);

describe("operator session on a real agent over loopback HTTP (offline planner)", () => {
  it("plans status, signs only on approval, and explains the result with its source", async () => {
    fixture = await sessionFixture(createOfflinePlanner());
    const connection = await fixture.session.connect();
    expect(connection.state).toBe("connected");
    const [proposal] = await fixture.session.ask("status");
    expect(proposal).toMatchObject({ type: "status.read", risk: "read" });
    expect(fixture.signerCalls()).toBe(0);
    expect(fixture.agent.received).toHaveLength(0);

    const result = await fixture.session.approve(proposal?.id ?? "");
    expect(result).toMatchObject({ state: "succeeded", jobType: "status.read" });
    expect(fixture.agent.received).toHaveLength(1);
    const explanation = ofType(fixture, "explanation").at(-1);
    expect(explanation).toMatchObject({ facts: [{ source: expect.stringMatching(/^status\.read job /) }] });
    expect(JSON.stringify(explanation)).toContain("models: gbt-test-tiny");
  });

  it("restart the backend and benchmark, approved one after another, run on the node", async () => {
    fixture = await sessionFixture(createOfflinePlanner());
    await fixture.session.connect();
    const [restart] = await fixture.session.ask("restart the backend");
    expect((await fixture.session.approve(restart?.id ?? ""))?.state).toBe("succeeded");
    const [bench] = await fixture.session.ask("run a benchmark");
    const result = await fixture.session.approve(bench?.id ?? "");
    expect(result?.state).toBe("succeeded");
    expect(result?.summary.join("\n")).toContain("decodeTokPerSec: 1234.5");
    expect(fixture.agent.actions).toEqual(["restart:backend", "benchmark:micro"]);
  });

  it("a rejected proposal is never signed or sent", async () => {
    fixture = await sessionFixture(createOfflinePlanner());
    await fixture.session.connect();
    const [drain] = await fixture.session.ask("drain");
    fixture.session.decline(drain?.id ?? "");
    expect(await fixture.session.approve(drain?.id ?? "")).toBeUndefined();
    expect(fixture.signerCalls()).toBe(0);
    expect(fixture.agent.received).toHaveLength(0);
    expect(ofType(fixture, "error").at(-1)).toMatchObject({ error: { code: "NOT_FOUND" } });
  });

  it("edited params are parsed again: a valid edit runs, an invalid one leaves the proposal unchanged", async () => {
    fixture = await sessionFixture(createOfflinePlanner());
    await fixture.session.connect();
    const [restart] = await fixture.session.ask("restart the backend");
    const id = restart?.id ?? "";
    expect(fixture.session.editParams(id, '{"service":"backend","force":true}')).toBeUndefined();
    expect(ofType(fixture, "edit_rejected").at(-1)).toMatchObject({ error: { code: "INVALID_PARAMS" } });
    expect(fixture.session.editParams(id, "not json")).toBeUndefined();
    expect(fixture.session.pending()[0]?.params).toEqual({ service: "backend" });
    expect(fixture.session.editParams(id, '{"service":"server"}')?.params).toEqual({ service: "server" });
    await fixture.session.approve(id);
    expect(fixture.agent.actions).toEqual(["restart:server"]);
  });

  it("a key that is not an owner of the node gets the agent's rejection, shown as the result", async () => {
    fixture = await sessionFixture(createOfflinePlanner(), {
      owners: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
    });
    await fixture.session.connect();
    const [status] = await fixture.session.ask("status");
    const result = await fixture.session.approve(status?.id ?? "");
    expect(result).toMatchObject({ state: "rejected", code: "UNKNOWN_SIGNER" });
    expect(result?.summary[0]).toContain("UNKNOWN_SIGNER");
  });

  it("with the agent unreachable it still plans, but refuses to sign", async () => {
    fixture = await sessionFixture(createOfflinePlanner(), { nodeUrl: "http://127.0.0.1:9" });
    expect((await fixture.session.connect()).state).toBe("unreachable");
    const [status] = await fixture.session.ask("status");
    expect(await fixture.session.approve(status?.id ?? "")).toBeUndefined();
    expect(ofType(fixture, "error").at(-1)).toMatchObject({ error: { code: "NODE_UNREACHABLE" } });
    expect(fixture.signerCalls()).toBe(0);
  });

  it("refuses to sign for an agent on another allowlist version", async () => {
    fixture = await sessionFixture(createOfflinePlanner(), { publishedVersion: 99 });
    expect((await fixture.session.connect()).state).toBe("incompatible");
    const [status] = await fixture.session.ask("status");
    await fixture.session.approve(status?.id ?? "");
    expect(ofType(fixture, "error").at(-1)).toMatchObject({ error: { code: "CONFLICT" } });
    expect(fixture.agent.received).toHaveLength(0);
  });

  it("refuses to sign when the agent at the URL is another node than the one jobs are bound to", async () => {
    const elsewhere = privateKeyToAccount(generatePrivateKey()).address;
    fixture = await sessionFixture(createOfflinePlanner(), { publishedNode: elsewhere });
    const connection = await fixture.session.connect();
    expect(connection).toMatchObject({ state: "incompatible" });
    expect(connection.message).toContain(`--node ${elsewhere}`);
    const [status] = await fixture.session.ask("status");
    await fixture.session.approve(status?.id ?? "");
    expect(fixture.signerCalls()).toBe(0);
    expect(fixture.agent.received).toHaveLength(0);
  });

  it("explains why the node is parked from the gateway's view, naming the gateway as the source", async () => {
    let nodeAddress = "";
    const gateway = createServer((req, res) => {
      if (req.headers.authorization !== "Bearer admin-token") {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          object: "list",
          data: [
            {
              id: "other",
              nodeAddress: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
              status: "active",
              breaker: "closed",
              eligible: true,
              rampFactor: 1,
              healthScore: 1,
            },
            {
              id: "mine",
              nodeAddress,
              status: "active",
              breaker: "open",
              probing: false,
              cooldownUntil: null,
              eligible: false,
              rampFactor: 0.25,
              healthScore: 0.61,
              belowFloor: false,
            },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
    const gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    try {
      fixture = await sessionFixture(createOfflinePlanner(), {
        gateway: gatewayViewSource({ gatewayUrl, adminToken: "admin-token" }),
      });
      nodeAddress = fixture.agent.node.address.toLowerCase();
      await fixture.session.connect();
      const added = await fixture.session.ask("why is my node parked?");
      const explanation = ofType(fixture, "explanation").at(-1);
      expect(explanation).toMatchObject({
        facts: [{ source: `gateway ${gatewayUrl} (GET /v1/gateway/nodes)` }],
      });
      const text = JSON.stringify(explanation);
      expect(text).toContain("parked: breaker open");
      expect(text).toContain("ramp-up 25%");
      expect(text).toContain("not eligible for traffic");
      // It also offers to read the node's own status, which still needs approval.
      expect(added.map((p) => p.type)).toEqual(["status.read"]);
      expect(fixture.agent.received).toHaveLength(0);
    } finally {
      await new Promise<void>((resolve) => gateway.close(() => resolve()));
    }
  });
});
