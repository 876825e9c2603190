import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  heartbeatDetailsSchema,
  type ModelCapabilitiesDetails,
  registrationDetailsSchema,
  type SignedObject,
  verifyObject,
} from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, it } from "vitest";
import { type GatewayLink, type GatewayLinkOptions, startGatewayLink } from "./gateway-link.js";

const CHAIN_ID = 31_337;
const nodeAccount = privateKeyToAccount(generatePrivateKey());

interface TestGateway {
  url: string;
  address: `0x${string}`;
  registrations: SignedObject<"NodeRegistration">[];
  heartbeats: SignedObject<"Heartbeat">[];
  tokens: string[];
  /** Requests the gateway refused, with why. */
  refused: string[];
  /** Drops every instance, as a restarted gateway would. */
  forget(): void;
  close(): Promise<void>;
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(text));
      } catch (error) {
        reject(error);
      }
    });
  });
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json" }).end(body);
}

/** A real gateway on loopback that verifies what the node signs and records it. */
async function startTestGateway(options: { port?: number; chainId?: number } = {}): Promise<TestGateway> {
  const account = privateKeyToAccount(generatePrivateKey());
  const chainId = options.chainId ?? CHAIN_ID;
  const registrations: SignedObject<"NodeRegistration">[] = [];
  const heartbeats: SignedObject<"Heartbeat">[] = [];
  const tokens: string[] = [];
  const refused: string[] = [];
  let known = false;
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.method === "GET" && req.url === GATEWAY_INFO_PATH) {
          send(res, 200, { address: account.address, chainId, heartbeatIntervalMs: 100 });
        } else if (req.method === "POST" && req.url === GATEWAY_REGISTER_PATH) {
          const signed = await verifyObject(await readJson(req), {
            kind: "NodeRegistration",
            chainId,
            audience: account.address,
          });
          registrationDetailsSchema.parse(signed.payload);
          registrations.push(signed);
          known = true;
          const linkToken = randomBytes(32).toString("base64url");
          tokens.push(linkToken);
          send(res, 200, {
            instanceId: `instance-${registrations.length}`,
            linkToken,
            heartbeatIntervalMs: 100,
          });
        } else if (req.method === "POST" && req.url === GATEWAY_HEARTBEAT_PATH) {
          const signed = await verifyObject(await readJson(req), {
            kind: "Heartbeat",
            chainId,
            audience: account.address,
          });
          heartbeatDetailsSchema.parse(signed.payload);
          if (!known) {
            send(res, 404, {
              error: {
                message: "Unknown instance.",
                type: "invalid_request_error",
                param: null,
                code: "unknown_instance",
              },
            });
            return;
          }
          heartbeats.push(signed);
          send(res, 200, { ok: true });
        } else {
          send(res, 404, {
            error: { message: "no route", type: "invalid_request_error", param: null, code: "not_found" },
          });
        }
      } catch (error) {
        refused.push((error as Error).message);
        send(res, 401, {
          error: {
            message: (error as Error).message,
            type: "authentication_error",
            param: null,
            code: "bad_signature",
          },
        });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    address: account.address,
    registrations,
    heartbeats,
    tokens,
    refused,
    forget: () => {
      known = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A pino logger whose entries the test can read. */
function capturingLogger() {
  const entries: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      entries.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), entries };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function link(gatewayUrl: string, extra: Partial<GatewayLinkOptions> = {}): GatewayLink {
  const started = startGatewayLink({
    gatewayUrl,
    account: nodeAccount,
    nodeUrl: "http://127.0.0.1:8787",
    capacity: 3,
    chainId: CHAIN_ID,
    models: async () => [{ id: "llama3:8b", digest: "sha256:abc" }, { id: "scripted" }],
    backend: { kind: "ollama", version: "0.5.1" },
    inFlight: () => 2,
    health: async () => ({ ok: true }),
    latestBenchmark: () => ({ kind: "BenchmarkRecord", note: "as signed" }),
    logger: pino({ level: "silent" }),
    retryMinMs: 20,
    retryMaxMs: 100,
    ...extra,
  });
  cleanups.push(() => started.stop());
  return started;
}

async function startGateway(options: Parameters<typeof startTestGateway>[0] = {}) {
  const gateway = await startTestGateway(options);
  cleanups.push(() => gateway.close());
  return gateway;
}

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
};

const strictlyGrowing = (values: number[]) =>
  values.every((v, i) => i === 0 || v > (values[i - 1] as number));

describe("gateway link", () => {
  it("registers with a signed NodeRegistration, then heartbeats on the gateway's interval, both naming its owners", async () => {
    const gateway = await startGateway();
    const owner = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const node = link(gateway.url, { owners: () => [owner] });
    const answer = await node.ready;
    expect(answer.instanceId).toBe("instance-1");
    expect(node.gateway()).toEqual({ address: gateway.address, chainId: CHAIN_ID, heartbeatIntervalMs: 100 });
    const registration = gateway.registrations[0] as SignedObject<"NodeRegistration">;
    expect(registration.message).toMatchObject({
      node: nodeAccount.address,
      gateway: gateway.address,
      url: "http://127.0.0.1:8787",
      capacity: 3,
    });
    expect(registration.message.expiresAt - registration.message.issuedAt).toBe(60);
    expect(registration.payload).toEqual({
      models: [{ id: "llama3:8b", digest: "sha256:abc" }, { id: "scripted" }],
      backend: { kind: "ollama", version: "0.5.1" },
      benchmark: { kind: "BenchmarkRecord", note: "as signed" },
      owners: [owner],
    });

    const started = Date.now();
    await until(() => gateway.heartbeats.length >= 4);
    // Four beats 100 ms apart: well under the 10 s default, well over a busy loop.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(3_000);
    const beat = gateway.heartbeats[0] as SignedObject<"Heartbeat">;
    expect(beat.message).toMatchObject({ node: nodeAccount.address, gateway: gateway.address, inFlight: 2 });
    expect(beat.payload).toEqual({
      models: ["llama3:8b", "scripted"],
      capacity: 3,
      health: { ok: true },
      owners: [owner],
    });
    expect(strictlyGrowing(gateway.heartbeats.map((h) => h.message.seq))).toBe(true);
    expect(gateway.refused).toEqual([]);

    expect(node.isLinkToken(gateway.tokens[0] as string)).toBe(true);
    expect(node.isLinkToken(randomBytes(32).toString("base64url"))).toBe(false);
    expect(node.isLinkToken("")).toBe(false);
  });

  it("signs each model's capabilities into the registration; figures out of bounds drop them, not the model", async () => {
    const gateway = await startGateway();
    const capabilities = {
      chat: true,
      tools: true,
      jsonSchema: true,
      embeddings: true,
      vision: false,
      logprobs: false,
      completions: true,
      contextLength: 4096,
      embeddingDimensions: 256,
    };
    const node = link(gateway.url, {
      models: async () => [
        { id: "llama3:8b", digest: "sha256:abc", capabilities },
        { id: "huge", capabilities: { ...capabilities, contextLength: 2 ** 40 } },
        { id: "scripted" },
      ],
    });
    await node.ready;
    const registration = gateway.registrations[0] as SignedObject<"NodeRegistration">;
    expect(registrationDetailsSchema.parse(registration.payload).models).toEqual([
      { id: "llama3:8b", digest: "sha256:abc", capabilities },
      { id: "huge" },
      { id: "scripted" },
    ]);
    expect(gateway.refused).toEqual([]);
  });

  it("registers again, signing the new capabilities, when a model is added or can do more; heartbeats otherwise", async () => {
    const gateway = await startGateway();
    let models: Array<{ id: string; capabilities?: ModelCapabilitiesDetails }> = [{ id: "scripted" }];
    const node = link(gateway.url, { models: async () => models });
    await node.ready;
    await until(() => gateway.heartbeats.length >= 2);
    expect(gateway.registrations).toHaveLength(1);
    const tools: ModelCapabilitiesDetails = {
      chat: true,
      tools: true,
      jsonSchema: false,
      embeddings: false,
      vision: false,
      logprobs: false,
      completions: false,
    };
    models = [{ id: "scripted", capabilities: tools }, { id: "added" }];
    await until(() => gateway.registrations.length === 2);
    expect(registrationDetailsSchema.parse(gateway.registrations[1]?.payload).models).toEqual(models);
    const beats = gateway.heartbeats.length;
    await until(() => gateway.heartbeats.length >= beats + 2);
    expect(gateway.registrations).toHaveLength(2);
  });

  it("registers again on 404 unknown_instance, accepts the new token (and the previous one), never logs tokens", async () => {
    const gateway = await startGateway();
    const { logger, entries } = capturingLogger();
    const node = link(gateway.url, { logger });
    await node.ready;
    gateway.forget();
    await until(() => gateway.registrations.length === 2);
    await until(() => node.isLinkToken(gateway.tokens[1] as string));
    expect(gateway.tokens[1]).not.toBe(gateway.tokens[0]);
    expect(node.isLinkToken(gateway.tokens[0] as string)).toBe(true);
    await until(() => gateway.heartbeats.length >= 2);
    expect(strictlyGrowing(gateway.registrations.map((r) => r.message.nonce))).toBe(true);
    // A heartbeat after a registration carries a seq above that registration's nonce.
    const lastBeat = gateway.heartbeats.at(-1) as SignedObject<"Heartbeat">;
    expect(lastBeat.message.seq).toBeGreaterThan(
      (gateway.registrations[1] as SignedObject<"NodeRegistration">).message.nonce,
    );
    expect(entries.some((e) => e.msg === "registered again with the gateway")).toBe(true);
    const logged = JSON.stringify(entries);
    for (const token of gateway.tokens) expect(logged).not.toContain(token);
  });

  it("keeps nonces and seqs growing across a restart of the link", async () => {
    const gateway = await startGateway();
    const first = link(gateway.url);
    await first.ready;
    await until(() => gateway.heartbeats.length >= 2);
    await first.stop();
    const second = link(gateway.url);
    await second.ready;
    await until(() => gateway.heartbeats.length >= 4);
    expect(gateway.registrations).toHaveLength(2);
    expect(strictlyGrowing(gateway.registrations.map((r) => r.message.nonce))).toBe(true);
    expect(strictlyGrowing(gateway.heartbeats.map((h) => h.message.seq))).toBe(true);
  });

  it("keeps retrying while the gateway is down, warns once, and registers when it comes up", async () => {
    const probe = await startTestGateway();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    const { logger, entries } = capturingLogger();
    const node = link(`http://127.0.0.1:${port}`, { logger });
    let registered = false;
    void node.ready.then(() => {
      registered = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(registered).toBe(false);
    const warnings = entries.filter((e) => e.level === 40);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.msg)).toMatch(/Cannot reach the gateway/);

    const gateway = await startGateway({ port });
    const answer = await node.ready;
    expect(answer.instanceId).toBe("instance-1");
    expect(gateway.registrations).toHaveLength(1);
  });

  it("refuses a gateway on another chain with one logged WRONG_CHAIN error, and keeps trying", async () => {
    const gateway = await startGateway({ chainId: 1 });
    const { logger, entries } = capturingLogger();
    link(gateway.url, { logger });
    await until(() => entries.some((e) => e.level === 50));
    await new Promise((r) => setTimeout(r, 300));
    const errors = entries.filter((e) => e.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "WRONG_CHAIN" });
    expect(gateway.registrations).toHaveLength(0);
  });

  it("signs usage receipts the gateway can verify", async () => {
    const gateway = await startGateway();
    const node = link(gateway.url);
    await expect(
      node.signReceipt({
        requestId: "r1",
        model: "scripted",
        promptTokens: 1,
        completionTokens: 1,
        ttftMs: 1,
        durationMs: 2,
        timings: { stream: false, finishReason: "stop", backend: null },
      }),
    ).rejects.toMatchObject({ code: "GATEWAY_UNREACHABLE" });
    await node.ready;
    const timings = {
      stream: true,
      finishReason: "length",
      backend: { promptMs: 1.5, decodeMs: 20, source: "x" },
    };
    const receipt = await node.signReceipt({
      requestId: "gw-123",
      model: "llama3:8b",
      promptTokens: 12,
      completionTokens: 34,
      ttftMs: 5.6,
      durationMs: 78.9,
      timings,
    });
    const verified = await verifyObject(JSON.parse(JSON.stringify(receipt)), {
      kind: "UsageReceipt",
      chainId: CHAIN_ID,
      audience: gateway.address,
      allowedSigners: [nodeAccount.address],
    });
    expect(verified.message).toMatchObject({
      requestId: "gw-123",
      promptTokens: 12,
      completionTokens: 34,
      ttftMs: 6,
    });
    expect(verified.message.expiresAt - verified.message.issuedAt).toBe(600);
    expect(verified.payload).toEqual(timings);
  });

  it("stops cleanly: no more traffic, nothing left holding the process, a hung request aborted", async () => {
    const resources = () => process.getActiveResourcesInfo().length;
    const before = resources();
    const gateway = await startGateway();
    const node = link(gateway.url);
    await node.ready;
    await until(() => gateway.heartbeats.length >= 1);
    await node.stop();
    const beats = gateway.heartbeats.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(gateway.heartbeats.length).toBe(beats);
    await gateway.close();
    await new Promise((r) => setImmediate(r));
    expect(resources()).toBeLessThanOrEqual(before);

    // A gateway that accepts the connection and never answers: stop() does not wait for the request.
    const hung = createServer(() => undefined);
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const orphan = link(`http://127.0.0.1:${(hung.address() as AddressInfo).port}`);
    await new Promise((r) => setTimeout(r, 100));
    const stopping = Date.now();
    await orphan.stop();
    expect(Date.now() - stopping).toBeLessThan(1_000);
    await expect(orphan.ready).rejects.toMatchObject({ code: "INTERRUPTED" });
    await new Promise<void>((resolve) => {
      hung.close(() => resolve());
      hung.closeAllConnections();
    });
    await new Promise((r) => setImmediate(r));
    expect(resources()).toBeLessThanOrEqual(before);
  });
});
