/**
 * "How much did I earn this week?": the Operator reads the gateway's signed earnings view (a real
 * loopback server signing with a real key: `GET /v1/gateway/info`, `GET /v1/nodes/:node/earnings`),
 * verifies it and quotes it with its source. Hostile first: a view signed by another key, one for
 * another node, one edited after signing are not facts: the Operator says why and quotes no number
 * of them. No job is proposed or signed for a question about earnings.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type EarningsPeriod, signObject } from "@gbt/protocol";
import type { Address, PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { earningsViewSource } from "./earnings-view.js";
import { createOfflinePlanner } from "./planner/offline-planner.js";
import { type SessionFixture, sessionFixture } from "./testing/session-fixture.js";

const DAY = 86_400_000;
const CHAIN_ID = 31_337;
const gatewayKey = privateKeyToAccount(generatePrivateKey());
const impostor = privateKeyToAccount(generatePrivateKey());
const served: { signer: PrivateKeyAccount; audience: Address | null; tamper: boolean } = {
  signer: gatewayKey,
  audience: null,
  tamper: false,
};

const period = (from: number | null, to: number, requests: number, earnedMicro: number): EarningsPeriod => ({
  from,
  to,
  requests,
  promptTokens: requests * 100,
  completionTokens: requests * 50,
  debitMicro: earnedMicro * 2,
  earnedMicro,
  heldMicro: 0,
  receipts: { valid: requests, missing: 0, invalid: 0, mismatch: 0 },
  multipliers:
    requests === 0
      ? null
      : { providerShare: 0.8, rampFactor: 0.5, switchPenalty: 1, bounty: 1.2, reputation: 0.9 },
});

let server: Server;
let gatewayUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (path === "/v1/gateway/info") {
      return send(200, { address: gatewayKey.address, chainId: CHAIN_ID, heartbeatIntervalMs: 5_000 });
    }
    const match = /^\/v1\/nodes\/(0x[0-9a-fA-F]{40})\/earnings$/.exec(path);
    if (!match) return send(404, { error: { message: "not found", type: "not_found" } });
    const node = (served.audience ?? match[1]) as Address;
    const at = Date.now();
    const issuedAt = Math.floor(at / 1000);
    signObject(served.signer, {
      kind: "EarningsView",
      chainId: CHAIN_ID,
      message: { gateway: served.signer.address, node, issuedAt, expiresAt: issuedAt + 300 },
      payload: {
        node,
        gateway: served.signer.address,
        asOf: at,
        periods: {
          today: period(Math.floor(at / DAY) * DAY, at + 1, 4, 250_000),
          week: period(at - 7 * DAY, at + 1, 31, 9_876_543),
          epoch: period(at - DAY, at + 1, 6, 400_000),
          allTime: period(null, at + 1, 120, 45_000_000),
        },
        latestMultipliers: null,
        settlement: null,
      },
    }).then((view) => {
      if (served.tamper)
        (view.payload as { periods: { week: EarningsPeriod } }).periods.week.earnedMicro = 1e12;
      send(200, { view });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

let fixture: SessionFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
  served.signer = gatewayKey;
  served.audience = null;
  served.tamper = false;
});

async function askEarnings(options: { gatewayAddress?: Address } = {}) {
  fixture = await sessionFixture(createOfflinePlanner(), {
    earnings: earningsViewSource({ gatewayUrl, ...options }),
  });
  await fixture.session.connect();
  const added = await fixture.session.ask("How much did I earn this week?");
  const explanation = fixture.events.filter((e) => e.type === "explanation").at(-1);
  return { added, explanation: explanation?.type === "explanation" ? explanation : undefined };
}

describe("the Operator and the earnings view: refusals", () => {
  it("quotes nothing of a view signed by another key, for another node, or edited", async () => {
    served.signer = impostor;
    let { added, explanation } = await askEarnings();
    expect(added).toHaveLength(0);
    expect(explanation?.facts[0]?.lines).toEqual([expect.stringMatching(/^not available: UNKNOWN_SIGNER/)]);
    expect(JSON.stringify(explanation)).not.toContain("9.876543");
    await fixture?.close();

    served.signer = gatewayKey;
    served.audience = privateKeyToAccount(generatePrivateKey()).address;
    ({ explanation } = await askEarnings());
    expect(explanation?.facts[0]?.lines[0]).toMatch(/^not available: WRONG_AUDIENCE/);
    await fixture?.close();

    served.audience = null;
    served.tamper = true;
    ({ explanation } = await askEarnings());
    expect(explanation?.facts[0]?.lines[0]).toMatch(/^not available: PAYLOAD_HASH_MISMATCH/);
    await fixture?.close();

    // The gateway's own key, but the node pins another: refused as well.
    served.tamper = false;
    ({ explanation } = await askEarnings({ gatewayAddress: impostor.address }));
    expect(explanation?.facts[0]?.lines[0]).toMatch(/^not available: UNKNOWN_SIGNER/);
  });

  it("says where earnings would come from when no gateway is known", async () => {
    fixture = await sessionFixture(createOfflinePlanner());
    await fixture.session.connect();
    await fixture.session.ask("how much did I earn this week?");
    const explanation = fixture.events.filter((e) => e.type === "explanation").at(-1);
    expect(JSON.stringify(explanation)).toContain("no gateway known to read earnings from");
  });
});

describe("the Operator and the earnings view: the answer", () => {
  it("answers this week's earnings from the signed view, naming its source, proposing no job", async () => {
    const { added, explanation } = await askEarnings();
    expect(added).toHaveLength(0);
    expect(fixture?.signerCalls()).toBe(0);
    const fact = explanation?.facts[0];
    expect(fact?.source).toContain(`gateway ${gatewayUrl} earnings view`);
    expect(fact?.source).toContain(`signed by the gateway ${gatewayKey.address}`);
    expect(fact?.lines[0]).toBe(
      "this week (last 7 days): earned 9.876543 credits from 31 requests (3100 prompt + 1550 completion tokens)",
    );
    expect(fact?.lines).toContain(
      "multipliers this week: provider share 80%, ramp-up 50%, switch penalty 100%, bounty ×1.2, reputation 90%",
    );
    expect(fact?.lines).toContain("this gateway does not settle on chain");
    expect(fact?.lines.some((line) => line.startsWith("all time: earned 45.000000 credits"))).toBe(true);
  });
});
