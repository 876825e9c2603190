import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GbtError } from "../../../errors.js";
import { errorBody, httpError } from "../../../http-errors.js";
import { gatewayPaths } from "../paths.js";
import { createGatewayClient } from "./gateway-client.js";

const ADMIN = "admin-token-0123456789abcdef0123456789";
const NODE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/** One instance of `GET /v1/gateway/nodes`, with every field the gateway writes, in its order. */
const nodeEntry = {
  id: NODE.toLowerCase(),
  nodeAddress: NODE,
  url: "http://127.0.0.1:9001",
  models: ["tiny-chat"],
  status: "active",
  lastHeartbeatAt: 1_760_000_000_000,
  registeredAt: 1_759_999_990_000,
  breaker: "closed",
  probing: false,
  cooldownUntil: null,
  eligible: true,
  rampFactor: 0.25,
  switchPenalty: 1,
  declaredCapacity: 4,
  capacity: 1,
  inFlight: 0,
  spare: 1,
  healthScore: 0.5,
  health: { successes: 0, failures: 0, neutral: 0 },
  tokPerSec: { benchmark: 42.5, observed: null },
  belowFloor: false,
  tier: "community",
  reputation: null,
  evidence: [],
  trust: null,
  backend: { kind: "embedded", version: "3.22.1" },
  modelDigests: [{ id: "tiny-chat", digest: "sha256:abc" }],
  lastHealth: { ok: true },
};

const evidence = {
  id: "ev_0123456789abcdef",
  hash: `0x${"ab".repeat(32)}`,
  instanceId: NODE.toLowerCase(),
  node: NODE,
  kind: "benchmark_spoofed",
  severity: "fraud",
  summary: "Measured 50.0 tok/s against a signed claim of 5000.0 tok/s.",
  details: { claimedTokPerSec: 5000, measuredTokPerSec: 50 },
  at: 1_760_000_000_000,
  slashingProposal: {
    id: 1,
    status: "proposed",
    evidenceHash: `0x${"ab".repeat(32)}`,
    createdAt: 1_760_000_000_000,
  },
};

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A gateway on loopback whose answers each test sets; it records what it was asked. */
let handler: Handler;
let server: Server;
let url: string;
let asked: {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
  headers: IncomingMessage["headers"];
}[];

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      asked.push({
        method: req.method ?? "",
        url: req.url ?? "",
        authorization: req.headers.authorization,
        body,
        headers: req.headers,
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  asked = [];
  handler = (_req, res) => json(res, 500, { unexpected: true });
});

async function caught(promise: Promise<unknown>): Promise<GbtError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GbtError) return error;
    throw error;
  }
  throw new Error("expected a GbtError");
}

/** A closed port on loopback. */
async function closedPort(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("createGatewayClient against a gateway on loopback", () => {
  it("lists the pool with the admin token, parsed into the very JSON the gateway sent", async () => {
    handler = (_req, res) => json(res, 200, { object: "list", data: [nodeEntry] });
    const nodes = await createGatewayClient({ url, adminToken: ADMIN }).listNodes();
    expect(asked).toMatchObject([
      { method: "GET", url: gatewayPaths.nodes, authorization: `Bearer ${ADMIN}` },
    ]);
    expect(JSON.stringify(nodes)).toBe(JSON.stringify([nodeEntry]));
  });

  it("sends no credential the call does not need, and refuses an admin call without a token before sending", async () => {
    handler = (_req, res) =>
      json(res, 200, {
        address: NODE,
        chainId: 31337,
        heartbeatIntervalMs: 10_000,
      });
    const client = createGatewayClient({ url, apiKey: "gbt_gk_secret" });
    expect(await client.getInfo()).toEqual({ address: NODE, chainId: 31337, heartbeatIntervalMs: 10_000 });
    expect(asked[0]?.authorization).toBeUndefined();
    const missing = await caught(client.listNodes());
    expect([missing.code, missing.exitCode]).toEqual(["MISSING_INPUT", 2]);
    expect(asked).toHaveLength(1);
  });

  it("a refused admin token is UNAUTHORIZED (exit 4) with the caller's hint", async () => {
    handler = (_req, res) => {
      const refusal = httpError("invalid_admin_token", "This route needs the gateway's admin token.");
      json(res, refusal.status, errorBody(refusal), { "www-authenticate": "Bearer" });
    };
    const error = await caught(
      createGatewayClient({
        url,
        adminToken: "wrong",
        hints: { adminToken: "Pass --admin-token-file." },
      }).listNodes(),
    );
    expect(error).toMatchObject({
      code: "UNAUTHORIZED",
      message: "The gateway refused the admin token.",
      hint: "Pass --admin-token-file.",
      details: { status: 401, code: "invalid_admin_token", path: gatewayPaths.nodes },
    });
    expect(error.exitCode).toBe(4);
  });

  it("an error body becomes the GbtError of its wire code, with the server's message", async () => {
    handler = (_req, res) => {
      const refusal = httpError(
        "not_found",
        `No node ${NODE.toLowerCase()} is registered with this gateway.`,
      );
      json(res, refusal.status, errorBody(refusal));
    };
    const error = await caught(createGatewayClient({ url }).getNodeTrust(NODE));
    expect(asked[0]?.url).toBe(`/v1/gateway/nodes/${NODE.toLowerCase()}/trust`);
    expect(error).toMatchObject({
      code: "NOT_FOUND",
      message: `No node ${NODE.toLowerCase()} is registered with this gateway.`,
      hint: "A node appears once it has registered (gbt serve --gateway URL).",
    });
    expect(error.exitCode).toBe(8);
  });

  it("a registry refusal reads 'The registry refused: …' under its code; a 4xx is never retried", async () => {
    handler = (_req, res) => {
      const refusal = httpError("conflict", "tiny-chat@1.0.0 is delisted; publish a new version.");
      json(res, refusal.status, errorBody(refusal));
    };
    const error = await caught(
      createGatewayClient({ url, adminToken: ADMIN, sleep: async () => {} }).setRegistryModelStatus({
        name: "tiny-chat",
        version: "1.0.0",
        action: "approve",
        reason: "reviewed",
      }),
    );
    expect(error).toMatchObject({
      code: "CONFLICT",
      message: "The registry refused: tiny-chat@1.0.0 is delisted; publish a new version.",
    });
    expect(error.exitCode).toBe(9);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ method: "POST", url: "/v1/registry/models/tiny-chat/1.0.0/approve" });
    expect(JSON.parse(asked[0]?.body ?? "")).toEqual({ reason: "reviewed" });
  });

  it("a GbtError code the gateway sent as its own wire code is kept (a 500 it did not name is the gateway's failure)", async () => {
    handler = (_req, res) =>
      json(res, 502, {
        error: { message: "The chain refused.", type: "api_error", param: null, code: "insufficient_funds" },
      });
    const funds = await caught(createGatewayClient({ url, adminToken: ADMIN }).settleEpoch());
    expect([funds.code, funds.message]).toEqual(["INSUFFICIENT_FUNDS", "The chain refused."]);

    handler = (_req, res) =>
      json(res, 500, {
        error: {
          message: "Internal error in the gateway.",
          type: "server_error",
          param: null,
          code: "internal_error",
        },
      });
    const internal = await caught(createGatewayClient({ url }).getSettlementStatus());
    expect([internal.code, internal.message, internal.exitCode]).toEqual([
      "GATEWAY_UNREACHABLE",
      "The gateway answered HTTP 500.",
      5,
    ]);
  });

  it("retries an idempotent call on 5xx (Retry-After honoured) and tells the caller before each retry", async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls += 1;
      if (calls < 3) {
        json(res, 503, errorBody(httpError("no_capacity", "Busy.")), { "retry-after": "2" });
        return;
      }
      json(res, 200, { object: "list", data: [] });
    };
    const delays: number[] = [];
    const retries: string[] = [];
    const client = createGatewayClient({
      url,
      sleep: async (ms) => void delays.push(ms),
      onRetry: ({ attempt, reason }) => void retries.push(`${attempt}: ${reason}`),
    });
    expect(await client.listRegistryModels({ status: "approved" })).toEqual([]);
    expect(asked.map((a) => a.url)).toEqual(Array(3).fill("/v1/registry/models?status=approved"));
    expect(delays).toEqual([2000, 2000]);
    expect(retries).toEqual(["1: HTTP 503", "2: HTTP 503"]);

    // A call that is not idempotent is tried once.
    calls = 0;
    asked = [];
    const busy = await caught(
      createGatewayClient({ url, adminToken: ADMIN }).createAccount({ name: "alice" }),
    );
    expect(asked).toHaveLength(1);
    expect([busy.code, busy.message]).toEqual(["BUSY", "Busy."]);
  });

  it("no gateway at the URL is GATEWAY_UNREACHABLE (exit 5) naming the URL, with a next step", async () => {
    const down = await closedPort();
    const once = await caught(
      createGatewayClient({
        url: down,
        adminToken: ADMIN,
        hints: { unreachable: "Pass --url." },
      }).listNodes(),
    );
    expect(once).toMatchObject({
      code: "GATEWAY_UNREACHABLE",
      message: `No gateway answers at ${down}.`,
      hint: "Pass --url.",
      details: { url: down, reason: "connection refused" },
    });
    expect(once.exitCode).toBe(5);

    const retried = await caught(
      createGatewayClient({ url: down, attempts: 3, sleep: async () => {} }).listRegistryModels(),
    );
    expect(retried.message).toBe(`No gateway answers at ${down} (connection refused) after 3 tries.`);
    expect(retried.hint).toMatch(/gateway/);
  });

  it("a gateway that does not answer in time is unreachable, not a hang", async () => {
    handler = () => {
      // Never answers.
    };
    const error = await caught(createGatewayClient({ url, timeoutMs: 200 }).getSettlementStatus());
    expect([error.code, error.details?.reason]).toEqual(["GATEWAY_UNREACHABLE", "timed out after 0.2 s"]);
  });

  it("a wrong-shape answer is INVALID_OBJECT naming the field, never a cast", async () => {
    const { lastHealth: _dropped, ...missing } = nodeEntry;
    for (const entry of [missing, { ...nodeEntry, extra: 1 }, { ...nodeEntry, breaker: "melted" }]) {
      handler = (_req, res) => json(res, 200, { object: "list", data: [entry] });
      const error = await caught(createGatewayClient({ url, adminToken: ADMIN }).listNodes());
      expect(error).toMatchObject({
        code: "INVALID_OBJECT",
        message: "The gateway's node list is not in the expected shape.",
        hint: "Is the URL a gbt gateway of the same version?",
      });
      expect(error.exitCode).toBe(6);
      const issues = error.details?.issues as string[] | undefined;
      expect(issues?.[0]).toMatch(/^data\.0/);
    }
  });

  it("an answer that is not JSON, or is over the size bound, is INVALID_OBJECT", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>a captive portal</html>");
    };
    const html = await caught(createGatewayClient({ url }).getSettlementProof(NODE));
    expect([html.code, html.message]).toEqual(["INVALID_OBJECT", "The gateway's payout proof is not JSON."]);

    // Declared too large: refused before reading.
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(9 * 1024 * 1024) });
      res.write("{");
    };
    const declared = await caught(createGatewayClient({ url }).getSettlementProof(NODE));
    expect([declared.code, declared.message]).toEqual([
      "INVALID_OBJECT",
      `The gateway's payout proof is over ${8 * 1024 * 1024} bytes.`,
    ]);

    // Streamed without a length: cut off at the bound.
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 9; i++) res.write(chunk);
      res.end("{}");
    };
    const streamed = await caught(createGatewayClient({ url }).getSettlementProof(NODE));
    expect(streamed.message).toMatch(/is over \d+ bytes\.$/);
  });

  it("the ledger check's 500 carries its report: an answer, not a failure", async () => {
    const report = {
      ok: false,
      totalMicro: 5,
      unbalancedTransactions: [3],
      negativeConsumers: [],
      duplicateRequestIds: [],
      mismatchedUsage: [],
    };
    handler = (_req, res) => json(res, 500, report);
    expect(await createGatewayClient({ url, adminToken: ADMIN }).checkLedger()).toEqual(report);
  });

  it("creates an account and another key with the admin token", async () => {
    const account = {
      id: "acct_0123456789abcdef01234567",
      name: "alice",
      createdAt: "2026-01-01T00:00:00.000Z",
      balanceMicro: 5_000_000,
    };
    const key = {
      id: "key_0123456789abcdef01234567",
      accountId: account.id,
      name: "ci",
      prefix: "gbt_gk_abcde",
      key: "gbt_gk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
      createdAt: "2026-01-01T00:00:00.000Z",
    };
    handler = (req, res) => json(res, 201, req.url === gatewayPaths.accounts ? { account, key } : key);
    const client = createGatewayClient({ url, adminToken: ADMIN });
    expect(await client.createAccount({ name: "alice", keyName: "ci" })).toEqual({ account, key });
    expect(await client.createKey({ accountId: account.id, name: "ci" })).toEqual(key);
    expect(asked.map((a) => [a.method, a.url, JSON.parse(a.body)])).toEqual([
      ["POST", "/v1/gateway/accounts", { name: "alice", keyName: "ci" }],
      ["POST", `/v1/gateway/accounts/${account.id}/keys`, { name: "ci" }],
    ]);
  });

  it("reads evidence with a filter; a malformed id is refused before it reaches a path", async () => {
    handler = (request, res) =>
      json(
        res,
        200,
        request.url?.startsWith("/v1/gateway/evidence/") ? evidence : { object: "list", data: [evidence] },
      );
    const client = createGatewayClient({ url, adminToken: ADMIN });
    expect(await client.listEvidence({ node: NODE, limit: 5 })).toEqual([evidence]);
    expect(await client.getEvidence(evidence.id)).toEqual(evidence);
    expect(asked.map((a) => a.url)).toEqual([
      `/v1/gateway/evidence?node=${NODE}&limit=5`,
      `/v1/gateway/evidence/${evidence.id}`,
    ]);
    const traversal = await caught(client.getEvidence("../../etc"));
    expect([traversal.code, traversal.exitCode]).toEqual(["INVALID_INPUT", 6]);
    expect(asked).toHaveLength(2);
  });

  it("parses a payout proof, checksumming its addresses as the chain actions need", async () => {
    const proof = {
      node: NODE.toLowerCase(),
      cumulative: "12000000000000",
      proof: [`0x${"11".repeat(32)}`],
      epoch: "1",
      root: `0x${"22".repeat(32)}`,
      contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      chainId: 31337,
    };
    handler = (_req, res) => json(res, 200, proof);
    expect(await createGatewayClient({ url }).getSettlementProof(NODE)).toEqual({
      ...proof,
      node: NODE,
      contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    });
    expect(asked[0]?.url).toBe(`/v1/settlement/proofs/${NODE}`);
  });

  it("publishes with one idempotency key across retries of the same call", async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls += 1;
      if (calls === 1) {
        res.destroy();
        return;
      }
      json(res, 500, {});
    };
    const error = await caught(
      createGatewayClient({ url, attempts: 3, sleep: async () => {} }).submitRegistryModel({
        signed: { kind: "ModelManifest" } as never,
      }),
    );
    expect(error.code).toBe("GATEWAY_UNREACHABLE");
    const keys = new Set(asked.map((a) => a.headers["idempotency-key"]));
    expect(asked.length).toBeGreaterThanOrEqual(2);
    expect(keys.size).toBe(1);
  });

  it("refuses a URL that is not http(s) as a usage error", () => {
    expect(() => createGatewayClient({ url: "ftp://gw.example" })).toThrow(/not an http\(s\) URL/);
    expect(() => createGatewayClient({ url: "not a url" })).toThrow(GbtError);
  });
});
