/**
 * The signed earnings view on real parts: a real gateway server (real SQLite) relays paid traffic
 * to a fake node on loopback whose usage receipts the gateway checks and settles; the earnings
 * routes then read that gateway database. Hostile cases first: a bad address, a view checked
 * against another gateway key, another node, tampered payload, an expired view. Then the numbers:
 * what the view states equals the ledger's provider balance and the settled usage; periods cut at
 * the injected clock (today UTC, last 7 days, since the latest posted root, all time); the
 * multipliers are the ones the receipt settler applied (a ramping node earns a quarter);
 * a posted epoch moves "this epoch" and the unposted amount.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCumulativeTree } from "@gbt/contracts";
import {
  type EarningsViewPayload,
  earningsResponseSchema,
  isGbtError,
  type SignedObject,
  verifyEarningsView,
} from "@gbt/protocol";
import pino from "pino";
import { getAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { providerAccount } from "../gateway-database.js";
import { createGatewayMetrics } from "../gateway-metrics.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { createGatewayApp } from "../http/gateway-app.js";
import type { GatewayRoutes } from "../http/gateway-env.js";
import { earningsRoutes } from "../http/routes/earnings-routes.js";
import { type FakeNode, startFakeNode } from "../testing/fake-node.js";
import { cumulativeEarnings } from "./cumulative-earnings.js";
import { EpochStore } from "./epoch-store.js";

const CHAIN_ID = 31_337;
const CONTRACT = getAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3");
const WEI_PER_MICRO = 10n ** 12n;
const DAY = 86_400_000;
const gatewayAccount = privateKeyToAccount(generatePrivateKey());
const settlement = { chainId: CHAIN_ID, contract: CONTRACT, weiPerMicroCredit: WEI_PER_MICRO.toString() };

let dir: string;
let gateway: GatewayServer;
let node: FakeNode;
let apiKey: string;
let accountId: string;

async function serve(requests: number) {
  for (let i = 0; i < requests; i++) {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({
        model: "fake-model",
        max_tokens: 8,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    expect(response.status).toBe(200);
    await response.json();
  }
  await gateway.settled();
}

function app(clock: () => number, extra: Partial<Parameters<typeof earningsRoutes>[0]> = {}): GatewayRoutes {
  return createGatewayApp({
    metrics: createGatewayMetrics(),
    logger: pino({ level: "silent" }),
    routes: [
      earningsRoutes({
        db: gateway.db,
        account: gatewayAccount,
        chainId: CHAIN_ID,
        settlement,
        now: clock,
        cacheMs: 0,
        ...extra,
      }),
    ],
  });
}

async function fetchView(routes: GatewayRoutes, who: string) {
  const response = await routes.request(`/v1/nodes/${who}/earnings`);
  return { status: response.status, body: (await response.json()) as { view?: unknown; error?: unknown } };
}

async function verifiedView(at: number, who = node.account.address) {
  const { status, body } = await fetchView(
    app(() => at),
    who,
  );
  expect(status).toBe(200);
  const view = earningsResponseSchema.parse(body).view;
  return verifyEarningsView(view, {
    gateway: gatewayAccount.address,
    node: who,
    chainId: CHAIN_ID,
    now: () => at,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gbt-earnings-"));
  node = await startFakeNode({ tokens: 8 });
  gateway = await startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      allowPrivateNodes: true,
      prices: { "*": { inputPerMillion: 1000, outputPerMillion: 4000 } },
      // A brand-new node ramps: it earns a quarter of its share at first.
      routing: { rampUpDays: 7, rampUpStartFactor: 0.25 },
    }),
    dataDir: dir,
    account: gatewayAccount,
    adminToken: "admin-token-for-tests-0123456789",
    logger: pino({ level: "silent" }),
  });
  expect((await node.register(gateway.url)).status).toBe(200);
  const account = gateway.accounts.createAccount({ name: "c" });
  accountId = account.id;
  apiKey = gateway.accounts.createApiKey(account.id, "k").key;
  await serve(5);
});

afterAll(async () => {
  await gateway?.close(1_000);
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the signed earnings view: hostile cases", () => {
  it("refuses a path that is not an address", async () => {
    const { status, body } = await fetchView(
      app(() => Date.now()),
      "0xnot-an-address",
    );
    expect(status).toBe(400);
    expect(JSON.stringify(body)).toContain("not a node address");
  });

  it("is refused by a node that pins another gateway key, by another node, and when tampered or expired", async () => {
    const at = Date.now();
    const { body } = await fetchView(
      app(() => at),
      node.account.address,
    );
    const view = body.view as SignedObject<"EarningsView">;
    const options = {
      gateway: gatewayAccount.address,
      node: node.account.address,
      chainId: CHAIN_ID,
      now: () => at,
    };
    const code = async (value: unknown, overrides: Partial<typeof options> = {}) => {
      try {
        await verifyEarningsView(value, { ...options, ...overrides });
        return "accepted";
      } catch (error) {
        return isGbtError(error) ? error.code : String(error);
      }
    };
    expect(await code(view)).toBe("accepted");
    // Signed by a gateway key the node does not know.
    expect(await code(view, { gateway: privateKeyToAccount(generatePrivateKey()).address })).toBe(
      "UNKNOWN_SIGNER",
    );
    // Addressed to this node, not another.
    expect(await code(view, { node: privateKeyToAccount(generatePrivateKey()).address })).toBe(
      "WRONG_AUDIENCE",
    );
    // A payload edited after signing (more credits) no longer matches viewHash.
    const payload = view.payload as EarningsViewPayload;
    const inflated = {
      ...view,
      payload: {
        ...payload,
        periods: { ...payload.periods, allTime: { ...payload.periods.allTime, earnedMicro: 10 ** 12 } },
      },
    };
    expect(await code(inflated)).toBe("PAYLOAD_HASH_MISMATCH");
    // A view signed on another chain.
    expect(await code(view, { chainId: 1 })).toBe("WRONG_CHAIN");
    // Six minutes later the five-minute view has expired.
    expect(await code(view, { now: () => at + 6 * 60_000 })).toBe("EXPIRED");
    // Re-signed by someone else, naming themselves: still not the gateway.
    const forger = privateKeyToAccount(generatePrivateKey());
    const forgedResponse = await createGatewayApp({
      metrics: createGatewayMetrics(),
      logger: pino({ level: "silent" }),
      routes: [
        earningsRoutes({ db: gateway.db, account: forger, chainId: CHAIN_ID, now: () => at, cacheMs: 0 }),
      ],
    }).request(`/v1/nodes/${node.account.address}/earnings`);
    const forged = (await forgedResponse.json()) as { view: unknown };
    expect(await code(forged.view)).toBe("UNKNOWN_SIGNER");
  });

  it("states nothing for a node that never served, and views for it are not this node's", async () => {
    const stranger = privateKeyToAccount(generatePrivateKey()).address;
    const view = await verifiedView(Date.now(), stranger);
    expect(view.payload.periods.allTime).toMatchObject({ requests: 0, earnedMicro: 0, multipliers: null });
    expect(view.payload.latestMultipliers).toBeNull();
    expect(view.message.node).toBe(stranger);
  });
});

describe("the signed earnings view: the numbers", () => {
  it("states what the ledger credited, with the receipt settler's multipliers, today, this week and all time", async () => {
    const at = Date.now();
    const view = await verifiedView(at);
    const earned = gateway.ledger.balanceMicro(providerAccount(node.account.address));
    expect(earned).toBeGreaterThan(0);
    const rows = gateway.db
      .prepare("SELECT prompt_tokens AS p, completion_tokens AS c FROM usage_records WHERE node = ?")
      .all(node.account.address.toLowerCase()) as { p: number; c: number }[];
    const { periods } = view.payload;
    for (const period of [periods.today, periods.week, periods.epoch, periods.allTime]) {
      expect(period).toMatchObject({
        requests: 5,
        promptTokens: rows.reduce((sum, r) => sum + r.p, 0),
        completionTokens: rows.reduce((sum, r) => sum + r.c, 0),
        earnedMicro: earned,
        heldMicro: 0,
        receipts: { valid: 5, missing: 0, invalid: 0, mismatch: 0 },
      });
    }
    expect(periods.allTime.from).toBeNull();
    expect(periods.today.from).toBe(Math.floor(at / DAY) * DAY);
    expect(periods.week.from).toBe(at - 7 * DAY);
    // A node minutes old is at the ramp's start: a quarter of its share.
    expect(periods.allTime.multipliers?.rampFactor).toBeGreaterThanOrEqual(0.25);
    expect(periods.allTime.multipliers?.rampFactor).toBeLessThan(0.26);
    // One node alone serves the model: it earns the scarcity bounty, as the receipt settler applied it.
    expect(periods.allTime.multipliers).toMatchObject({
      switchPenalty: 1,
      bounty: parseGatewayConfig({}).bounty.multiplier,
      reputation: 1,
    });
    expect(view.payload.latestMultipliers?.rampFactor).toBeLessThan(0.26);
    expect(view.payload.settlement).toMatchObject({
      chainId: CHAIN_ID,
      contract: CONTRACT,
      earnedWei: (BigInt(earned) * WEI_PER_MICRO).toString(),
      latestRoot: null,
      unpostedWei: (BigInt(earned) * WEI_PER_MICRO).toString(),
    });
    // Eight days on, nothing is today's or this week's; all time keeps it.
    const later = await verifiedView(at + 8 * DAY);
    expect(later.payload.periods.today.requests).toBe(0);
    expect(later.payload.periods.week.requests).toBe(0);
    expect(later.payload.periods.allTime.earnedMicro).toBe(earned);
  });

  it("counts held credits apart, and a posted root ends the epoch", async () => {
    const before = (await verifiedView(Date.now())).payload.periods.allTime;
    // A request whose receipt did not check out: the share goes to suspense, not to the node.
    gateway.ledger.settleUsage({
      requestId: "req_missing_receipt",
      accountId,
      node: node.account.address,
      model: "fake-model",
      promptTokens: 10,
      completionTokens: 8,
      debitMicro: 1_000,
      providerCreditMicro: 800,
      receiptStatus: "missing",
      multipliers: { providerShare: 0.8, rampFactor: 1, switchPenalty: 1, bounty: 1, reputation: 1 },
    });
    const held = (await verifiedView(Date.now())).payload.periods.allTime;
    expect(held).toMatchObject({
      requests: before.requests + 1,
      earnedMicro: before.earnedMicro,
      heldMicro: 800,
      receipts: { valid: 5, missing: 1 },
    });

    // Settlement posts a root of everything earned so far (as settlement.ts records it).
    const postedAt = Date.now() + 1;
    const tree = buildCumulativeTree(cumulativeEarnings(gateway.ledger.providerEarnings(), WEI_PER_MICRO));
    new EpochStore(gateway.db).record({
      epoch: 1n,
      contract: CONTRACT,
      root: tree.root,
      total: tree.total,
      txHash: `0x${"ab".repeat(32)}`,
      postedAt,
      tree,
    });
    const after = await verifiedView(postedAt + 10);
    expect(after.payload.periods.epoch).toMatchObject({ from: postedAt, requests: 0, earnedMicro: 0 });
    expect(after.payload.settlement?.latestRoot).toMatchObject({
      epoch: "1",
      postedAt,
      cumulativeWei: (BigInt(before.earnedMicro) * WEI_PER_MICRO).toString(),
    });
    expect(after.payload.settlement?.unpostedWei).toBe("0");

    // More paid traffic after the root: this epoch's, and unposted until the next root.
    await serve(2);
    const next = await verifiedView(Date.now() + 20);
    const earned = gateway.ledger.balanceMicro(providerAccount(node.account.address));
    expect(next.payload.periods.epoch.requests).toBe(2);
    expect(next.payload.periods.epoch.earnedMicro).toBe(earned - before.earnedMicro);
    expect(next.payload.settlement?.unpostedWei).toBe(
      (BigInt(earned - before.earnedMicro) * WEI_PER_MICRO).toString(),
    );
  });

  it("reuses a node's signed view within the cache window and signs afresh after it", async () => {
    let at = Date.now();
    const routes = app(() => at, { cacheMs: 10_000 });
    const first = (await fetchView(routes, node.account.address)).body.view as SignedObject<"EarningsView">;
    at += 5_000;
    const again = (await fetchView(routes, node.account.address)).body.view as SignedObject<"EarningsView">;
    expect(again.signature).toBe(first.signature);
    at += 6_000;
    const fresh = (await fetchView(routes, node.account.address)).body.view as SignedObject<"EarningsView">;
    expect(fresh.message.issuedAt).toBeGreaterThan(first.message.issuedAt);
  });
});
