import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  type GatewayInfo,
  signObject,
} from "@gbt/protocol";
import pino from "pino";
import type { Address, PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { createJobRelay } from "./job-relay.js";

const ADMIN = "admin-token-for-tests-0123456789";
const JOBS_PER_MINUTE = 3;

/** A node's agent on loopback that counts what reaches it and answers every job `succeeded`. */
async function startAgentStub(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ state: "succeeded" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let dir: string;
let gateway: GatewayServer | undefined;
let agent: Awaited<ReturnType<typeof startAgentStub>>;
// The gateway's clock: the rate limit refills only when the test moves it.
let clock = Date.now();
const seconds = () => Math.floor(clock / 1000);
const node = privateKeyToAccount(generatePrivateKey());
const owner = privateKeyToAccount(generatePrivateKey());
const stranger = privateKeyToAccount(generatePrivateKey());
let info: GatewayInfo;
let stamp = 1;

/** The node's signed registration, naming `owners` (omitted: a node of an older version). */
function registration(owners: readonly Address[] | undefined) {
  return signObject(node, {
    kind: "NodeRegistration",
    chainId: info.chainId,
    message: {
      node: node.address,
      gateway: info.address,
      url: agent.url,
      capacity: 1,
      nonce: stamp++,
      issuedAt: seconds(),
      expiresAt: seconds() + 60,
    },
    payload: {
      models: [{ id: "fake-model" }],
      backend: { kind: "fake" },
      benchmark: null,
      ...(owners ? { owners } : {}),
    },
  });
}

async function register(owners: readonly Address[] | undefined): Promise<void> {
  expect((await post(GATEWAY_REGISTER_PATH, JSON.stringify(await registration(owners)))).status).toBe(200);
}

async function heartbeat(owners: readonly Address[]): Promise<void> {
  const signed = await signObject(node, {
    kind: "Heartbeat",
    chainId: info.chainId,
    message: {
      node: node.address,
      gateway: info.address,
      seq: stamp++,
      inFlight: 0,
      issuedAt: seconds(),
      expiresAt: seconds() + 60,
    },
    payload: { models: ["fake-model"], capacity: 1, health: { ok: true }, owners },
  });
  expect((await post(GATEWAY_HEARTBEAT_PATH, JSON.stringify(signed))).status).toBe(200);
}

function job(signer: PrivateKeyAccount = owner) {
  return signObject(signer, {
    kind: "Job",
    chainId: info.chainId,
    message: {
      jobId: randomUUID(),
      node: node.address,
      issuer: signer.address,
      type: "status.read",
      nonce: stamp++,
      notBefore: seconds() - 5,
      expiresAt: seconds() + 300,
      allowlistVersion: 1,
    },
    payload: {},
  });
}

const post = (path: string, body: string) =>
  fetch(`${gateway?.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
const relay = async (signer?: PrivateKeyAccount) =>
  post(`/v1/nodes/${node.address}/jobs`, JSON.stringify(await job(signer)));
const codeOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string } }).error.code;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-job-relay-"));
  agent = await startAgentStub();
  clock = Date.now();
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The agent stub listens on loopback.
      allowPrivateNodes: true,
      verification: { enabled: false },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    now: () => clock,
    relay: createJobRelay({ jobsPerMinute: JOBS_PER_MINUTE }),
  });
  info = (await (await fetch(`${gateway.url}${GATEWAY_INFO_PATH}`)).json()) as GatewayInfo;
});
afterEach(async () => {
  await gateway?.close(1_000);
  gateway = undefined;
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the job relay (a real gateway, a node's agent on loopback)", () => {
  it("relays an owner's job, and refuses a stranger's with 403 owner_not_allowed without contacting the node", async () => {
    await register([owner.address]);
    expect((await relay(owner)).status).toBe(200);
    expect(agent.hits).toEqual(["POST /agent/jobs"]);
    for (let i = 0; i < 5; i++) {
      const refused = await relay(stranger);
      expect(refused.status).toBe(403);
      expect(await codeOf(refused)).toBe("owner_not_allowed");
    }
    expect(agent.hits).toHaveLength(1);
  });

  it("relays nothing to a node that publishes no owners, and follows the owners its heartbeats publish", async () => {
    await register(undefined);
    const none = await relay(owner);
    expect(none.status).toBe(403);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(
      /publishes no owners/,
    );
    await heartbeat([owner.address]);
    expect((await relay(owner)).status).toBe(200);
    await heartbeat([]);
    expect((await relay(owner)).status).toBe(403);
    expect(agent.hits).toHaveLength(1);
  });

  it("refuses a NodeRegistration naming more owners than the bound", async () => {
    const owners = Array.from({ length: 33 }, () => privateKeyToAccount(generatePrivateKey()).address);
    const signed = await registration(owners);
    expect((await post(GATEWAY_REGISTER_PATH, JSON.stringify(signed))).status).toBe(400);
  });

  it("relays exactly jobsPerMinute owner jobs, then 429 rate_limited with Retry-After, refilling with the clock", async () => {
    await register([owner.address]);
    // A stranger's refusals spend none of the node's tokens.
    for (let i = 0; i < 10; i++) expect((await relay(stranger)).status).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < JOBS_PER_MINUTE + 2; i++) statuses.push((await relay(owner)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(agent.hits).toHaveLength(JOBS_PER_MINUTE);

    const limited = await relay(owner);
    expect(await codeOf(limited)).toBe("rate_limited");
    // One token comes back every 60/3 = 20 s.
    expect(limited.headers.get("retry-after")).toBe("20");
    clock += 19_000;
    const early = await relay(owner);
    expect(early.status).toBe(429);
    expect(early.headers.get("retry-after")).toBe("1");
    clock += 1_000;
    expect((await relay(owner)).status).toBe(200);
    expect((await relay(owner)).status).toBe(429);
    expect(agent.hits).toHaveLength(JOBS_PER_MINUTE + 1);
  });
});
