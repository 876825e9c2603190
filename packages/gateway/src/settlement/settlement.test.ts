/**
 * Settlement against a real anvil and a real gateway server with fake nodes on loopback: paid
 * traffic → an epoch posts the cumulative root → each node's proof from the HTTP route claims on
 * chain exactly its ledger earnings; an epoch without new earnings posts nothing; a later epoch
 * states the new cumulative total; proofs survive a gateway restart.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ANVIL_DEV_PRIVATE_KEY,
  claim,
  deployAll,
  type GbtDeployment,
  type RunningAnvil,
  readGbtBalance,
  startAnvil,
} from "@gbt/contracts";
import pino from "pino";
import { createClient, type Hex, http, type PrivateKeyAccount, parseEther, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { providerAccount } from "../gateway-database.js";
import { type GatewayServer, startGatewayServer } from "../gateway-server.js";
import { type FakeNode, startFakeNode } from "../testing/fake-node.js";
import { createSettlement } from "./settlement.js";

const ADMIN = "admin-token-for-tests-0123456789";
const WEI_PER_MICRO = 10n ** 12n;
let anvil: RunningAnvil;
let deployment: GbtDeployment;
let dir: string;
const gatewayAccount = privateKeyToAccount(generatePrivateKey());
const nodes: FakeNode[] = [];

const chainClient = (account: PrivateKeyAccount) =>
  createClient({
    account,
    chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
    transport: http(anvil.rpcUrl),
    cacheTime: 0,
  });

async function startGateway(): Promise<GatewayServer> {
  return startGatewayServer({
    config: parseGatewayConfig({
      port: 0,
      // The test nodes listen on loopback.
      allowPrivateNodes: true,
      prices: { "*": { inputPerMillion: 1000, outputPerMillion: 4000 } },
      routing: { rampUpDays: 0 },
      settlement: {
        rpcUrl: anvil.rpcUrl,
        chainId: 31_337,
        contract: deployment.settlement,
        epochSeconds: 3600,
      },
    }),
    dataDir: dir,
    account: gatewayAccount,
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    settlement: createSettlement(),
  });
}

const settle = async (gateway: GatewayServer) => {
  const response = await fetch(`${gateway.url}/v1/settlement/epochs`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as {
    posted: boolean;
    epoch: string | null;
    total?: string;
    reason?: string;
  };
};

async function serve(gateway: GatewayServer, apiKey: string, requests: number) {
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

const proofOf = async (gateway: GatewayServer, node: string) => {
  const response = await fetch(`${gateway.url}/v1/settlement/proofs/${node}`);
  return {
    status: response.status,
    body: (await response.json()) as { cumulative: string; proof: Hex[]; epoch: string },
  };
};

beforeAll(async () => {
  anvil = await startAnvil();
  const admin = chainClient(privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY));
  deployment = await deployAll(admin, { settler: gatewayAccount.address, rootDelaySeconds: 0n });
  dir = mkdtempSync(join(tmpdir(), "gbt-settlement-"));
  const accounts = [gatewayAccount, ...[0, 1].map(() => privateKeyToAccount(generatePrivateKey()))];
  for (const account of accounts) {
    await admin.request({
      method: "anvil_setBalance" as never,
      params: [account.address, toHex(parseEther("1"))] as never,
    });
  }
  for (const account of accounts.slice(1)) nodes.push(await startFakeNode({ account, tokens: 8 }));
});

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.close()));
  await anvil?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("gateway settlement on a real chain", () => {
  it("posts cumulative roots per epoch and serves proofs that claim exactly the ledger's earnings", async () => {
    let gateway = await startGateway();
    try {
      expect(await settle(gateway)).toEqual({ posted: false, reason: "no earnings", epoch: null });
      for (const node of nodes) expect((await node.register(gateway.url)).status).toBe(200);
      const account = gateway.accounts.createAccount({ name: "c" });
      const apiKey = gateway.accounts.createApiKey(account.id, "k").key;
      await serve(gateway, apiKey, 6);

      // Without the admin token nobody can force an epoch.
      expect((await fetch(`${gateway.url}/v1/settlement/epochs`, { method: "POST" })).status).toBe(401);
      const first = await settle(gateway);
      expect(first).toMatchObject({ posted: true, epoch: "1" });
      expect(await settle(gateway)).toMatchObject({ posted: false, reason: "unchanged", epoch: "1" });

      const earned = (node: FakeNode) =>
        BigInt(gateway.ledger.balanceMicro(providerAccount(node.account.address)));
      expect(BigInt(first.total ?? "0")).toBe(
        (earned(nodes[0] as FakeNode) + earned(nodes[1] as FakeNode)) * WEI_PER_MICRO,
      );

      // The router spreads requests at random among equals: take a node that earned.
      const a = nodes.find((node) => earned(node) > 0n) as FakeNode;
      const proofA = await proofOf(gateway, a.account.address);
      expect(proofA.status).toBe(200);
      expect(BigInt(proofA.body.cumulative)).toBe(earned(a) * WEI_PER_MICRO);
      const { amount } = await claim(chainClient(a.account), {
        deployment,
        node: a.account.address,
        cumulative: BigInt(proofA.body.cumulative),
        proof: proofA.body.proof,
      });
      expect(amount).toBe(earned(a) * WEI_PER_MICRO);
      expect(
        await readGbtBalance(chainClient(a.account), { token: deployment.token, account: a.account.address }),
      ).toBe(amount);

      expect((await proofOf(gateway, privateKeyToAccount(generatePrivateKey()).address)).status).toBe(404);
      expect((await proofOf(gateway, "0xnot-an-address")).status).toBe(400);

      // More traffic: epoch 2 states the new cumulative total, and a claim pays only the increase.
      await serve(gateway, apiKey, 4);
      expect(await settle(gateway)).toMatchObject({ posted: true, epoch: "2" });
      await gateway.close(1_000);
      // The proofs come back after a restart (from gateway.db, not memory).
      gateway = await startGateway();
      const proofA2 = await proofOf(gateway, a.account.address);
      expect(proofA2.body.epoch).toBe("2");
      const second = await claim(chainClient(a.account), {
        deployment,
        node: a.account.address,
        cumulative: BigInt(proofA2.body.cumulative),
        proof: proofA2.body.proof,
      });
      expect(second.amount).toBe(BigInt(proofA2.body.cumulative) - BigInt(proofA.body.cumulative));
      expect(second.amount).toBeGreaterThanOrEqual(0n);
    } finally {
      await gateway.close(1_000);
    }
  });
});
