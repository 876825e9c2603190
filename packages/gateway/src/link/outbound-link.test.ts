/**
 * The outbound link end to end in one process: a real gateway (allowPrivateNodes off: it dials no
 * node) and real node servers on a scripted backend, each joined over its own outbound link. The
 * link's TCP connection runs through a relay the test can cut, as a NAT or a dropped Wi-Fi would.
 * Network separation (a node the gateway cannot connect to at all) is proven by the namespace test
 * in packages/cli; here: the protocol, streaming, cancellation, failover, reconnection, replacement
 * and the hostile handshakes.
 *
 * @gbt/node is loaded at run time (the gateway package does not depend on it; tests only).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GATEWAY_LINK_PATH,
  LINK_CHALLENGE_HEADER,
  LINK_NODE_HEADER,
  LINK_NODE_URL,
  LINK_UPGRADE_PROTOCOL,
  signObject,
  verifyObject,
} from "@gbt/protocol";
import OpenAI from "openai";
import pino from "pino";
import type { Address, LocalAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";

const MODEL = "scripted-model";
const CHAIN = 31_337;
const logger = pino({ level: "silent" });

interface Scripted {
  active(): number;
  readonly finished: Array<{ reason: string; completionTokens: number }>;
  listModels(): Promise<{ id: string }[]>;
  close(): Promise<void>;
}
interface NodeServerHandle {
  url: string;
  inFlight(): number;
  acceptConnection(connection: unknown): void;
  close(deadlineMs?: number): Promise<void>;
}
interface LinkHandle {
  ready: Promise<unknown>;
  refresh(): void;
  isLinkToken(token: string): boolean;
  signReceipt(receipt: unknown): Promise<unknown>;
  stop(): Promise<void>;
}
interface Outbound {
  connected(): boolean;
  stop(graceMs?: number): Promise<void>;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
  onConnected(listener: () => void): void;
}
interface NodePackage {
  startNodeServer(options: Record<string, unknown>): Promise<NodeServerHandle>;
  startGatewayLink(options: Record<string, unknown>): LinkHandle;
  startOutboundLink(options: Record<string, unknown>): Outbound;
}
interface NodeTesting {
  createScriptedBackend(options: Record<string, unknown>): Scripted;
}

/** A TCP relay between a node and the gateway: `cut()` drops every connection through it at once. */
async function startRelay(
  target: string,
): Promise<{ url: string; readonly accepted: number; cut(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((inbound) => {
    accepted += 1;
    const outbound = tcpConnect(Number(port), hostname);
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    get accepted() {
      return accepted;
    },
    cut() {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let gbtNode: NodePackage;
let testing: NodeTesting;
let dir: string;
let gateway: GatewayServer;
let apiKey: string;
const cleanups: Array<() => Promise<void>> = [];

interface LinkedNode {
  account: LocalAccount;
  backend: Scripted;
  server: NodeServerHandle;
  link: LinkHandle;
  outbound: Outbound;
  relay: Awaited<ReturnType<typeof startRelay>>;
  pinned: Address[];
  /** Connections the node opened through its relay (one per dial). */
  dials(): number;
}

async function linkedNode(
  options: {
    tokenMs?: number;
    expected?: Address;
    account?: LocalAccount;
    chainId?: number;
    capacity?: () => number;
    /** A fixed redial delay (default: 20 ms doubling to 200 ms, jittered). */
    redialMs?: number;
  } = {},
): Promise<LinkedNode> {
  const account = options.account ?? privateKeyToAccount(generatePrivateKey());
  const backend = testing.createScriptedBackend({
    models: [MODEL],
    tokens: ["a", "b", "c", "d"],
    tokenMs: options.tokenMs ?? 1,
    defaultMaxTokens: 8,
  });
  let link: LinkHandle | null = null;
  const server = await gbtNode.startNodeServer({
    backend,
    logger,
    capacity: 64,
    gatewayLink: {
      isLinkToken: (token: string) => link?.isLinkToken(token) ?? false,
      signReceipt: (receipt: unknown) => (link as LinkHandle).signReceipt(receipt),
    },
  });
  const relay = await startRelay(gateway.url);
  const dials = () => relay.accepted;
  const pinned: Address[] = [];
  const outbound = gbtNode.startOutboundLink({
    gatewayUrl: relay.url,
    account,
    chainId: options.chainId ?? CHAIN,
    pin: {
      ...(options.expected ? { expected: options.expected } : {}),
      load: async () => pinned[0] ?? null,
      save: async (address: Address) => {
        pinned.push(address);
      },
    },
    accept: (connection: unknown) => server.acceptConnection(connection),
    logger,
    dialMinMs: options.redialMs ?? 20,
    dialMaxMs: options.redialMs ?? 200,
    ...(options.redialMs !== undefined ? { random: () => 0.999 } : {}),
  });
  link = gbtNode.startGatewayLink({
    gatewayUrl: relay.url,
    account,
    nodeUrl: LINK_NODE_URL,
    capacity: options.capacity ?? 64,
    chainId: options.chainId ?? CHAIN,
    models: async () => (await backend.listModels()).map((m) => ({ id: m.id })),
    backend: { kind: "scripted" },
    inFlight: () => server.inFlight(),
    health: async () => ({ ok: true }),
    latestBenchmark: () => null,
    logger,
    carrier: outbound,
    retryMinMs: 20,
    retryMaxMs: 200,
  });
  const node = { account, backend, server, link, outbound, relay, pinned, dials };
  cleanups.unshift(async () => {
    await link?.stop();
    await server.close(100);
    await outbound.stop(100);
    await relay.close();
    await backend.close();
  });
  return node;
}

const until = async (check: () => boolean | Promise<boolean>, what: string, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const instanceOf = (node: LinkedNode) => gateway.pool.get(node.account.address.toLowerCase());
const routable = (node: LinkedNode) =>
  gateway.pool.live().find((view) => view.id === node.account.address.toLowerCase())?.eligible === true;

beforeAll(async () => {
  gbtNode = (await import("@gbt/node" as string)) as NodePackage;
  testing = (await import("@gbt/node/testing" as string)) as NodeTesting;
  dir = mkdtempSync(join(tmpdir(), "gbt-outbound-link-"));
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // No node address is ever dialled: a linked node needs no URL the policy would refuse.
      allowPrivateNodes: false,
      prices: { "*": { inputPerMillion: 1000, outputPerMillion: 4000 } },
      routing: { rampUpDays: 0 },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: "admin-token-for-tests-0123456789",
    logger,
  });
  const created = gateway.accounts.createAccount({ name: "alice" });
  gateway.ledger.adjustConsumer(created.id, 1_000_000_000, "test credits");
  apiKey = gateway.accounts.createApiKey(created.id, "test").key;
}, 60_000);

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  await gateway?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

const client = () => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey, maxRetries: 0 });

describe("outbound link", () => {
  it("registers over the link, pins the gateway's address, and streams answers to the official client", async () => {
    const node = await linkedNode();
    await node.link.ready;
    expect(node.pinned).toEqual([gateway.address]);
    const instance = instanceOf(node);
    expect(instance?.link.url).toBe("http://node.gbt-link");
    const stream = await client().chat.completions.create({
      model: MODEL,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("abcdabcd");
    const whole = await client().chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(whole.choices[0]?.message.content).toBe("abcdabcd");
    await gateway.settled();
    // Each answer is billed from the node's own signed receipt, as over a direct connection.
    const served = node.backend.finished.filter((f) => f.reason !== "abort");
    expect(served.length).toBe(2);
  });

  it("a consumer's cancel resets its stream on the link and stops the generation on the node", async () => {
    const node = await linkedNode({ tokenMs: 5 });
    await node.link.ready;
    // Warm the link's pool of streams first: a cancel must reach the node on a reused stream too.
    for (let i = 0; i < 3; i++) {
      await client().chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "w" }] });
    }
    const others = gateway.pool.live().filter((view) => view.id !== node.account.address.toLowerCase());
    for (const view of others) gateway.pool.markUnreachable(view.id);
    const controller = new AbortController();
    const stream = await client().chat.completions.create(
      { model: MODEL, stream: true, max_tokens: 2000, messages: [{ role: "user", content: "long" }] },
      { signal: controller.signal },
    );
    let seen = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) seen += 1;
        if (seen === 3) {
          controller.abort();
          break;
        }
      }
    } catch {
      // the client's own abort
    }
    await until(() => node.backend.finished.some((f) => f.reason === "abort"), "the node to stop generating");
    const aborted = node.backend.finished.find((f) => f.reason === "abort");
    expect(aborted?.completionTokens).toBeLessThan(2000);
    expect(node.backend.active()).toBe(0);
  });

  it("a gateway signing with another key than the one expected gets no link, and nothing of the node", async () => {
    const node = await linkedNode({ expected: privateKeyToAccount(generatePrivateKey()).address });
    await until(() => node.dials() >= 2, "a second dial");
    expect(node.outbound.connected()).toBe(false);
    expect(node.pinned).toEqual([]);
    expect(instanceOf(node)).toBeUndefined();
  });

  it("a gateway on another chain gets no link", async () => {
    const node = await linkedNode({ chainId: 1 });
    await until(() => node.dials() >= 2, "a second dial");
    expect(node.outbound.connected()).toBe(false);
    expect(instanceOf(node)).toBeUndefined();
  });

  it("answers a link handshake with a LinkAccept over the node's own challenge; refuses malformed ones before any work", async () => {
    const upgrade = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const request = httpRequest(`${gateway.url}${path}`, {
          headers: { connection: "Upgrade", ...headers },
        });
        request.on("upgrade", (response, socket) => {
          socket.destroy();
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: "" });
        });
        request.on("response", (response) => {
          let body = "";
          response.on("data", (chunk) => {
            body += chunk;
          });
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
          );
        });
        request.on("error", reject);
        request.end();
      });
    const node = privateKeyToAccount(generatePrivateKey()).address;
    const challenge = `0x${"5a".repeat(32)}`;
    const good = {
      upgrade: LINK_UPGRADE_PROTOCOL,
      [LINK_NODE_HEADER]: node,
      [LINK_CHALLENGE_HEADER]: challenge,
    };
    const accepted = await upgrade(GATEWAY_LINK_PATH, good);
    expect(accepted.status).toBe(101);
    const signed = JSON.parse(
      Buffer.from(String(accepted.headers["x-gbt-link-accept"]), "base64url").toString(),
    );
    const verified = await verifyObject(signed, {
      kind: "LinkAccept",
      chainId: CHAIN,
      audience: node,
      allowedSigners: [gateway.address],
      skewSeconds: 60,
    });
    expect(verified.message.challenge).toBe(challenge);
    expect((await upgrade("/v1/other", good)).status).toBe(404);
    expect((await upgrade(GATEWAY_LINK_PATH, { ...good, upgrade: "websocket" })).status).toBe(400);
    const noChallenge = await upgrade(GATEWAY_LINK_PATH, {
      upgrade: LINK_UPGRADE_PROTOCOL,
      [LINK_NODE_HEADER]: node,
    });
    expect(noChallenge.status).toBe(400);
    expect(JSON.parse(noChallenge.body).error.param).toBe(LINK_CHALLENGE_HEADER);
    expect((await upgrade(GATEWAY_LINK_PATH, { ...good, [LINK_NODE_HEADER]: "0x1234" })).status).toBe(400);
  });

  it("refuses a plain registration that names the link's URL: it is reached over the link only", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const issuedAt = Math.floor(Date.now() / 1000);
    const registration = await signObject(account, {
      kind: "NodeRegistration",
      chainId: CHAIN,
      message: {
        node: account.address,
        gateway: gateway.address,
        url: LINK_NODE_URL,
        capacity: 4,
        nonce: Date.now(),
        issuedAt,
        expiresAt: issuedAt + 60,
      },
      payload: { models: [{ id: MODEL }], backend: { kind: "scripted" }, benchmark: null },
    });
    const response = await fetch(`${gateway.url}/v1/gateway/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(registration),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("invalid_node_url");
    expect(body.error.message).toContain("/v1/gateway/link");
    expect(gateway.pool.get(account.address.toLowerCase())).toBeUndefined();
  });

  it("a second link under the same key replaces the live one at once: one live link, the old closed", async () => {
    // The first node would redial only after a minute: what closes its link is the replacement.
    const first = await linkedNode({ redialMs: 60_000 });
    await first.link.ready;
    const oldChannel = instanceOf(first)?.link.transport as { lost?: boolean };
    expect(oldChannel.lost).toBe(false);
    const second = await linkedNode({ account: first.account });
    await second.link.ready;
    const newChannel = instanceOf(second)?.link.transport as { lost?: boolean };
    expect(newChannel).not.toBe(oldChannel);
    expect(oldChannel.lost).toBe(true);
    expect(newChannel.lost).toBe(false);
    await until(() => !first.outbound.connected(), "the old link's end to see it closed");
    expect(second.outbound.connected()).toBe(true);
    expect(routable(second)).toBe(true);
    // Traffic goes to the new link's node.
    const answer = await client().chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "x" }],
    });
    expect(answer.choices[0]?.message.content).toBe("abcdabcd");
  });

  it("a node that closes its link (a clean stop) is unroutable at once, not after the pings give up", async () => {
    const node = await linkedNode();
    await node.link.ready;
    await until(() => routable(node), "routable");
    await node.link.stop();
    await node.outbound.stop(0);
    // Pings would take 15 s; the node's FIN ends the link now.
    await until(() => !routable(node), "unroutable", 3_000);
    expect(gateway.pool.live().find((view) => view.id === node.account.address.toLowerCase())?.status).toBe(
      "stale",
    );
  });

  it("drains when the node offers 0 (outside its schedule), and takes traffic again when it offers more", async () => {
    let offered = 8;
    const node = await linkedNode({ capacity: () => offered });
    await node.link.ready;
    await until(() => routable(node), "routable");
    offered = 0;
    node.link.refresh();
    await until(
      () =>
        gateway.pool.live().find((view) => view.id === node.account.address.toLowerCase())?.status ===
        "draining",
      "draining",
    );
    expect(routable(node)).toBe(false);
    offered = 8;
    node.link.refresh();
    await until(() => routable(node), "routable again");
  });
});
