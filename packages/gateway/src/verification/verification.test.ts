import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom } from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type GatewayConfigInput, parseGatewayConfig } from "../gateway-config.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { type FakeNode, type FakeNodeOptions, startFakeNode } from "../testing/fake-node.js";
import type { EvidenceRecord } from "./evidence-store.js";
import { createVerification, type Verification } from "./verification.js";

const logger = pino({ level: "silent" });
const ADMIN = "admin-token-for-tests-0123456789";
const DAY = 86_400_000;
const DIGEST = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/** What an honest fake node answers with max_tokens 8. */
const HONEST_ANSWER = Array.from({ length: 8 }, (_, i) => `tok${i} `).join("");
const CANARY = {
  model: "fake-model",
  digest: DIGEST,
  prompt: "Say something.",
  seed: 7,
  maxTokens: 8,
  expected: HONEST_ANSWER,
};
/** What an honest node claims: a runtime version and a digest for its model. */
const HONEST_CLAIMS: FakeNodeOptions = {
  modelDigests: { "fake-model": DIGEST },
  backend: { kind: "fake", version: "1.2.3" },
};

let dir: string;
let gateway: GatewayServer;
let verification: Verification;
let nodes: FakeNode[] = [];
let apiKey: string;
/** The gateway's clock: real time at the start, moved by hand. */
let clock: number;

async function startGateway(verificationConfig: GatewayConfigInput["verification"] = {}, seed = 1) {
  clock = Date.now();
  verification = createVerification({ random: seededRandom(seed) });
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      routing: { rampUpDays: 0, heartbeatIntervalMs: 600_000 },
      verification: {
        enabled: false,
        canaries: [CANARY],
        benchmarkTokens: 16,
        ...verificationConfig,
      },
    }),
    dataDir: dir,
    account: privateKeyToAccount(generatePrivateKey()),
    adminToken: ADMIN,
    logger,
    now: () => clock,
    verification,
  });
  const account = gateway.accounts.createAccount({ name: "alice" });
  apiKey = gateway.accounts.createApiKey(account.id, "test").key;
}

async function addNode(options: FakeNodeOptions = {}): Promise<FakeNode> {
  const node = await startFakeNode({ ...HONEST_CLAIMS, ...options });
  expect((await node.register(gateway.url)).status).toBe(200);
  nodes.push(node);
  return node;
}

const id = (node: FakeNode) => node.account.address.toLowerCase();

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", ...init.headers },
  });

async function challenge(node: FakeNode, kinds: string[] = ["canary"]) {
  const response = await admin(`/v1/gateway/nodes/${node.account.address}/challenge`, {
    method: "POST",
    body: JSON.stringify({ kinds }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as {
    results: { kind: string; outcome: string; evidenceId: string | null; details: Record<string, unknown> }[];
    trust: { tier: string; reputation: number };
  };
}

interface NodeRow {
  id: string;
  tier: string;
  reputation: number | null;
  evidence: string[];
  trust: { reasons: string[]; challenges: { passed: number; failed: number } } | null;
  backend: { kind: string; version?: string };
}

async function nodeRow(node: FakeNode): Promise<NodeRow> {
  const response = await admin("/v1/gateway/nodes");
  expect(response.status).toBe(200);
  const rows = ((await response.json()) as { data: NodeRow[] }).data;
  const row = rows.find((r) => r.id === id(node));
  if (row === undefined) throw new Error(`node ${id(node)} not listed`);
  return row;
}

const chat = (extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}`, ...headers },
    body: JSON.stringify({
      model: "fake-model",
      messages: [{ role: "user", content: "hello" }],
      max_tokens: 8,
      ...extra,
    }),
  });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gbt-verification-"));
});

afterEach(async () => {
  await verification?.idle();
  await gateway?.close(1000);
  for (const node of nodes) await node.close();
  nodes = [];
  rmSync(dir, { recursive: true, force: true });
});

describe("canaries", () => {
  it("catches a node that serves another model than the digest it claims: verified → community, fraud evidence, slashing proposal", async () => {
    await startGateway();
    const node = await addNode();
    const before = await nodeRow(node);
    expect(before.tier).toBe("community");
    expect(before.trust?.reasons).toContain("no canary answered yet");

    const passed = await challenge(node);
    expect(passed.results[0]).toMatchObject({ kind: "canary", outcome: "pass", evidenceId: null });
    const verified = await nodeRow(node);
    expect(verified).toMatchObject({ tier: "verified", evidence: [] });
    expect(verified.reputation).toBeGreaterThan(0.5);

    node.faults.alterOutput = true; // now it serves other weights under the same claims
    const failed = await challenge(node);
    expect(failed.results[0]).toMatchObject({ kind: "canary", outcome: "fail" });
    const evidenceId = failed.results[0]?.evidenceId as string;
    expect(evidenceId).toMatch(/^ev_[0-9a-f]{16}$/);

    const flagged = await nodeRow(node);
    expect(flagged.tier).toBe("community");
    expect(flagged.evidence).toEqual([evidenceId]);
    expect(flagged.reputation).toBeLessThan(verified.reputation as number);

    const record = (await (await admin(`/v1/gateway/evidence/${evidenceId}`)).json()) as EvidenceRecord;
    expect(record).toMatchObject({
      id: evidenceId,
      kind: "model_digest_mismatch",
      severity: "fraud",
      node: node.account.address,
    });
    expect(record.hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(record.slashingProposal).toMatchObject({ status: "proposed", evidenceHash: record.hash });
    expect(record.details).toMatchObject({ digest: DIGEST, seed: 7 });
  });

  it("does not judge a node by a canary of another model build (a different digest)", async () => {
    await startGateway();
    const node = await addNode({
      modelDigests: { "fake-model": "sha256:other" },
      faults: { alterOutput: true },
    });
    const result = await challenge(node);
    expect(result.results[0]).toMatchObject({ outcome: "skipped" });
    const row = await nodeRow(node);
    expect(row).toMatchObject({ tier: "community", evidence: [] });
  });

  it("turns a receipt signed by another key, or for tokens not delivered, into fraud evidence", async () => {
    await startGateway();
    const forger = await addNode({ faults: { receiptSigner: privateKeyToAccount(generatePrivateKey()) } });
    const inflater = await addNode({ faults: { inflateReceipt: 3 } });
    const forged = await challenge(forger);
    const inflated = await challenge(inflater);
    expect(forged.results[0]?.outcome).toBe("fail");
    expect(inflated.results[0]?.outcome).toBe("fail");
    const kinds = async (node: FakeNode) =>
      (
        (await (await admin(`/v1/gateway/evidence?node=${node.account.address}`)).json()) as {
          data: EvidenceRecord[];
        }
      ).data.map((e) => [e.kind, e.severity, e.slashingProposal?.status]);
    expect(await kinds(forger)).toEqual([["signature_mismatch", "fraud", "proposed"]]);
    expect(await kinds(inflater)).toEqual([["receipt_not_delivered", "fraud", "proposed"]]);
  });

  it("a node that times out or is at capacity gets no verdict (neutral), not a failure", async () => {
    await startGateway();
    const node = await addNode({ faults: { status: 429 } });
    const result = await challenge(node);
    expect(result.results[0]).toMatchObject({ outcome: "error", evidenceId: null });
    expect((await nodeRow(node)).evidence).toEqual([]);
  });

  it("keeps the admin routes behind the admin token and answers bad input with its own errors", async () => {
    await startGateway();
    const node = await addNode();
    const anonymous = await fetch(`${gateway.url}/v1/gateway/nodes/${node.account.address}/challenge`, {
      method: "POST",
      body: "{}",
    });
    expect(anonymous.status).toBe(401);
    expect((await fetch(`${gateway.url}/v1/gateway/evidence`)).status).toBe(401);
    const unknown = await admin("/v1/gateway/nodes/0x0000000000000000000000000000000000000001/challenge", {
      method: "POST",
      body: "{}",
    });
    expect(unknown.status).toBe(404);
    const badKinds = await admin(`/v1/gateway/nodes/${node.account.address}/challenge`, {
      method: "POST",
      body: JSON.stringify({ kinds: ["hack"] }),
    });
    expect(badKinds.status).toBe(400);
    expect((await admin("/v1/gateway/evidence/ev_0000000000000000")).status).toBe(404);
    expect((await admin("/v1/gateway/evidence?node=robert'); DROP TABLE")).status).toBe(400);
    // A node's own standing is public (gbt node status), without the admin token.
    const trust = await fetch(`${gateway.url}/v1/gateway/nodes/${node.account.address}/trust`);
    expect(trust.status).toBe(200);
    expect(await trust.json()).toMatchObject({ id: id(node), tier: "community" });
  });
});

describe("consumer receipts and the timer", () => {
  it("turns a consumer receipt that claims undelivered tokens into fraud evidence, once", async () => {
    await startGateway();
    const inflater = await addNode({ faults: { inflateReceipt: 3 } });
    for (let i = 0; i < 3; i++) await (await chat()).text();
    const honest = await addNode(); // joins later, and serves honestly from then on
    inflater.faults.status = 429;
    for (let i = 0; i < 3; i++) await (await chat()).text();
    const served = (node: FakeNode) => node.served.filter((s) => s.requestId?.startsWith("gw-")).length;
    expect(served(honest)).toBeGreaterThan(0);
    const found = await verification.scanReceipts();
    expect(found).toHaveLength(3);
    expect(await verification.scanReceipts()).toEqual([]); // each settled request is looked at once
    const row = await nodeRow(inflater);
    expect(row.evidence.sort()).toEqual([...found].sort());
    expect(row.trust?.reasons).toContain(`${found.length} fraud evidence record(s) in the window`);
    expect((await nodeRow(honest)).evidence).toEqual([]);
    const record = (await (await admin(`/v1/gateway/evidence/${found[0]}`)).json()) as EvidenceRecord;
    expect(record).toMatchObject({ kind: "receipt_not_delivered", severity: "fraud" });
    expect(record.details).toMatchObject({ claimedCompletionTokens: 24, deliveredCompletionTokens: 8 });
  });

  it("turns a consumer receipt signed by another key into signature-mismatch evidence", async () => {
    await startGateway();
    const forger = await addNode({ faults: { receiptSigner: privateKeyToAccount(generatePrivateKey()) } });
    for (let i = 0; i < 2; i++) await (await chat({}, {})).text();
    expect(forger.served.filter((s) => s.requestId?.startsWith("gw-"))).toHaveLength(2);
    const found = await verification.scanReceipts();
    expect(found).toHaveLength(2);
    const record = (await (await admin(`/v1/gateway/evidence/${found[0]}`)).json()) as EvidenceRecord;
    expect(record).toMatchObject({
      kind: "signature_mismatch",
      severity: "fraud",
      node: forger.account.address,
    });
    expect(record.slashingProposal?.status).toBe("proposed");
  });

  it("challenges registered nodes on its own timer when enabled", async () => {
    await startGateway({ enabled: true, canaryIntervalMs: 1000, benchmarkIntervalMs: 1000 });
    const node = await addNode();
    for (let i = 0; i < 100 && (await nodeRow(node)).trust?.challenges.passed === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await nodeRow(node)).tier).toBe("verified");
  });
});

describe("throughput challenges", () => {
  it("flags a node whose signed benchmark claims far more than the gateway measures; a modest claim passes", async () => {
    await startGateway();
    // Both emit a token every 5 ms (at most ~200 tok/s); one claims 20 tok/s, the other 5000.
    const honest = await addNode({ tokens: 64, tokenDelayMs: 5, benchmarkTokPerSec: 20 });
    const inflated = await addNode({ tokens: 64, tokenDelayMs: 5, benchmarkTokPerSec: 5000 });
    const ok = await challenge(honest, ["benchmark"]);
    expect(ok.results[0]).toMatchObject({ kind: "benchmark", outcome: "pass", evidenceId: null });
    expect(ok.results[0]?.details.measuredTokPerSec).toBeGreaterThan(20);

    const caught = await challenge(inflated, ["benchmark"]);
    expect(caught.results[0]).toMatchObject({ kind: "benchmark", outcome: "fail" });
    expect(caught.results[0]?.details.drift).toBeGreaterThan(0.2);
    const record = (await (
      await admin(`/v1/gateway/evidence/${caught.results[0]?.evidenceId}`)
    ).json()) as EvidenceRecord;
    expect(record).toMatchObject({ kind: "benchmark_spoofed", severity: "fraud" });
    expect(record.details).toMatchObject({ claimedTokPerSec: 5000 });

    expect((await nodeRow(honest)).evidence).toEqual([]);
    expect((await nodeRow(inflated)).evidence).toEqual([record.id]);
  });

  it("skips a node without a signed benchmark", async () => {
    await startGateway();
    const node = await addNode();
    const result = await challenge(node, ["benchmark"]);
    expect(result.results[0]).toMatchObject({
      outcome: "skipped",
      reason: "the node has no signed benchmark",
    });
  });
});

describe("reputation and tiers over time", () => {
  it("decays old outcomes, forgets evidence after the window, and needs fresh canaries to stay verified", async () => {
    await startGateway();
    const node = await addNode();
    await challenge(node);
    node.faults.alterOutput = true;
    await challenge(node);
    const fresh = await nodeRow(node);
    expect(fresh.tier).toBe("community");

    clock += 7 * DAY; // one half-life: the failure weighs half, reputation drifts back toward neutral
    const week = await nodeRow(node);
    expect(week.reputation).toBeGreaterThan(fresh.reputation as number);
    expect(week.evidence).toHaveLength(1);

    clock += 8 * DAY; // beyond the 14-day window
    node.faults.alterOutput = false;
    const later = await nodeRow(node);
    expect(later.evidence).toEqual([]);
    expect(later.tier).toBe("community"); // no recent canary
    await challenge(node);
    expect((await nodeRow(node)).tier).toBe("verified");
    // The record itself is history: still listed for admins.
    const all = (await (await admin("/v1/gateway/evidence")).json()) as { data: EvidenceRecord[] };
    expect(all.data).toHaveLength(1);

    clock += 2 * DAY; // the passed canary is now older than verifiedTtlHours (24 h)
    expect((await nodeRow(node)).trust?.reasons).toContain("the latest passed canary is too old");
  });

  it("keys trust by node, not by stake: a new node key starts with no history; re-registering keeps it", async () => {
    await startGateway();
    const caught = await addNode({ faults: { alterOutput: true } });
    await challenge(caught);
    expect((await nodeRow(caught)).evidence).toHaveLength(1);
    // Same operator, new node key (stake moved to it): nothing carries over, good or bad.
    const successor = await addNode();
    expect(await nodeRow(successor)).toMatchObject({ tier: "community", evidence: [] });
    expect((await nodeRow(successor)).trust?.challenges).toMatchObject({ passed: 0, failed: 0 });
    // The caught node registering again is still the same node.
    expect((await caught.register(gateway.url)).status).toBe(200);
    expect((await nodeRow(caught)).evidence).toHaveLength(1);
  });
});

describe("minimum tier routing", () => {
  it("routes x-gbt-min-tier: verified only to verified nodes, and says so when none qualifies", async () => {
    await startGateway();
    const verifiedNode = await addNode();
    const communityNode = await addNode({ backend: { kind: "fake" } }); // no runtime version: never verified
    await challenge(verifiedNode);
    await challenge(communityNode);
    expect((await nodeRow(communityNode)).tier).toBe("community");
    const pooled = (node: FakeNode) =>
      node.served.filter((s) => s.pooled && s.requestId?.startsWith("gw-")).length;
    for (let i = 0; i < 6; i++) {
      const response = await chat({}, { "x-gbt-min-tier": "verified" });
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(pooled(verifiedNode)).toBe(6);
    expect(pooled(communityNode)).toBe(0);

    const attested = await chat({}, { "x-gbt-min-tier": "attested" });
    expect(attested.status).toBe(503);
    expect(((await attested.json()) as { error: { code: string } }).error.code).toBe("tier_unavailable");

    const bad = await chat({}, { "x-gbt-min-tier": "platinum" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("x-gbt-min-tier");
    // A community node is still served to requests that ask for no tier.
    const community = await chat({}, { "x-gbt-min-tier": "community" });
    expect(community.status).toBe(200);
  });
});

describe("cloud-account nodes", () => {
  it("routes and pays a node registered with backend cloud like any other, but never as verified", async () => {
    await startGateway();
    const cloud = await addNode({ backend: { kind: "cloud", version: "1.2.3" } });
    const passed = await challenge(cloud);
    expect(passed.results[0]).toMatchObject({ kind: "canary", outcome: "pass", evidenceId: null });
    const row = await nodeRow(cloud);
    expect(row).toMatchObject({ tier: "community", evidence: [] });
    expect(row.trust?.reasons).toContain(
      "a cloud-account node (backend cloud) cannot prove which hardware serves it: never verified",
    );
    expect(row.backend.kind).toBe("cloud");
    expect(row.reputation).toBeGreaterThan(0.5);

    const pooled = () => cloud.served.filter((s) => s.pooled && s.requestId?.startsWith("gw-")).length;
    for (let i = 0; i < 3; i++) {
      const response = await chat();
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(pooled()).toBe(3);
    await gateway.settled();
    const earned = gateway.ledger.providerEarnings().find((e) => e.node.toLowerCase() === id(cloud));
    expect(earned?.earnedMicro).toBeGreaterThan(0);

    const strict = await chat({}, { "x-gbt-min-tier": "verified" });
    expect(strict.status).toBe(503);
    expect(((await strict.json()) as { error: { code: string } }).error.code).toBe("tier_unavailable");
    expect(pooled()).toBe(3);
  });
});

describe("redundant sampling", () => {
  it("replays seeded requests on a second node; a third breaks a disagreement; nothing sampled is billed", async () => {
    await startGateway({ sampleRate: 1 });
    const honest = [await addNode(), await addNode()];
    const tampered = await addNode({ faults: { alterOutput: true } });
    const balanceBefore = gateway.ledger.balanceMicro(`consumer:${gateway.accounts.listAccounts()[0]?.id}`);
    for (let i = 0; i < 6; i++) await (await chat({ seed: 42 + i, temperature: 0 })).text();
    await verification.idle();
    await gateway.settled();
    const comparisons = verification.comparisons;
    expect(comparisons.length).toBe(6);
    for (const comparison of comparisons) {
      const involvesTampered = comparison.instances.includes(id(tampered));
      expect(comparison.agree).toBe(!involvesTampered);
      if (involvesTampered) expect(comparison.outvoted).toBe(id(tampered));
    }
    for (const node of honest) expect((await nodeRow(node)).evidence).toEqual([]);
    // Only the 6 consumer requests were billed: the replays never reach the settler.
    const usage = gateway.db.prepare("SELECT COUNT(*) AS n FROM usage_records").get() as { n: number };
    expect(usage.n).toBe(6);
    expect(balanceBefore).toBeGreaterThan(0);
  });

  it("does not sample unseeded requests (their answers may differ)", async () => {
    await startGateway({ sampleRate: 1 });
    await addNode();
    await addNode();
    await (await chat()).text();
    await verification.idle();
    expect(verification.comparisons).toEqual([]);
  });
});

describe("randomized run", () => {
  it.each([11, 12, 13])("never flags an honest node (seed %i)", async (seed) => {
    await startGateway({ sampleRate: 0.5 }, seed);
    const rng = seededRandom(seed * 7919);
    const honest: FakeNode[] = [];
    for (let i = 0; i < 4; i++) {
      honest.push(
        await addNode({
          tokens: 64,
          tokenDelayMs: 2 + Math.floor(rng() * 4),
          // Honest claims stay well under what a 2–5 ms pace delivers.
          benchmarkTokPerSec: 10 + Math.floor(rng() * 40),
          capacity: 1 + Math.floor(rng() * 4),
        }),
      );
    }
    const liar = await addNode({ faults: { alterOutput: true } });
    const braggart = await addNode({ tokens: 64, tokenDelayMs: 5, benchmarkTokPerSec: 10_000 });
    const all = [...honest, liar, braggart];
    for (let step = 0; step < 30; step++) {
      const roll = rng();
      const node = all[Math.floor(rng() * all.length)] as FakeNode;
      if (roll < 0.5) {
        const stream = rng() < 0.3;
        const response = await chat({ seed: Math.floor(rng() * 1000), temperature: 0, stream });
        await response.text();
      } else if (roll < 0.75) {
        await challenge(node, ["canary"]);
      } else if (roll < 0.85) {
        await challenge(node, ["benchmark"]);
      } else {
        clock += Math.floor(rng() * 3 * DAY);
        for (const n of all) await n.heartbeat(gateway.url);
      }
    }
    await challenge(liar, ["canary"]);
    await challenge(braggart, ["benchmark"]);
    await verification.idle();
    expect(await verification.scanReceipts()).toEqual([]); // every consumer receipt was honest
    for (const node of honest) {
      const row = await nodeRow(node);
      expect(row.evidence).toEqual([]);
      expect(row.trust?.challenges.failed).toBe(0);
    }
    expect((await nodeRow(liar)).evidence.length).toBeGreaterThan(0);
    expect((await nodeRow(braggart)).evidence.length).toBeGreaterThan(0);
  });
});
