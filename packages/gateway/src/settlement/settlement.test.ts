/**
 * Settlement against a real anvil and a real gateway server with fake nodes on loopback: paid
 * traffic → an epoch posts the cumulative root → each node's proof from the HTTP route claims on
 * chain exactly its ledger earnings; an epoch without new earnings posts nothing; a later epoch
 * states the new cumulative total; proofs survive a gateway restart. Then, on a Settlement with a
 * one-hour root delay and a settler key apart from the gateway's link key: roots are signed by the
 * settler key, the link key holds no settler role, proofs are of the root in effect only, an epoch
 * finding a root pending posts nothing, and claims pay once anvil's clock passes the delay (never a
 * sleep); a root governance cancelled is not posted again.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ANVIL_DEV_PRIVATE_KEY,
  cancelPendingRoot,
  claim,
  deployAll,
  type GbtDeployment,
  type RunningAnvil,
  readGbtBalance,
  settlementAbi,
  startAnvil,
} from "@gbt/contracts";
import { createKeystore, writeKeystore } from "@gbt/protocol";
import pino from "pino";
import { createClient, getAddress, type Hex, http, type PrivateKeyAccount, parseEther, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { getTransaction, readContract } from "viem/actions";
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

async function startGateway(
  on: { deployment: GbtDeployment; dataDir: string; settlerKeyFile?: string; env?: NodeJS.ProcessEnv } = {
    deployment,
    dataDir: dir,
  },
): Promise<GatewayServer> {
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
        contract: on.deployment.settlement,
        epochSeconds: 3600,
        ...(on.settlerKeyFile ? { settlerKeyFile: on.settlerKeyFile } : {}),
      },
    }),
    dataDir: on.dataDir,
    account: gatewayAccount,
    adminToken: ADMIN,
    logger: pino({ level: "silent" }),
    settlement: createSettlement(on.env ? { env: on.env } : {}),
  });
}

/** Moves anvil's clock (never the test's): what the root delay waits for. */
async function advanceChainTime(seconds: number) {
  const admin = chainClient(privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY));
  await admin.request({ method: "evm_increaseTime" as never, params: [seconds] as never });
  await admin.request({ method: "evm_mine" as never, params: [] as never });
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
    txHash?: Hex;
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
    body: (await response.json()) as {
      cumulative: string;
      proof: Hex[];
      epoch: string;
      error?: { message: string };
    },
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

  it("signs roots with a settler key of its own, serves proofs of the root in effect only, and waits out the delay", async () => {
    const settlerKey = generatePrivateKey();
    const settler = privateKeyToAccount(settlerKey);
    const admin = chainClient(privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY));
    const delayed = await deployAll(admin, { settler: settler.address, rootDelaySeconds: 3600n });
    await admin.request({
      method: "anvil_setBalance" as never,
      params: [settler.address, toHex(parseEther("1"))] as never,
    });
    const base = { address: delayed.settlement, abi: settlementAbi } as const;
    const role = await readContract(admin, { ...base, functionName: "SETTLER_ROLE" });
    const hasRole = (account: `0x${string}`) =>
      readContract(admin, { ...base, functionName: "hasRole", args: [role, account] });
    expect(await hasRole(settler.address)).toBe(true);
    expect(await hasRole(gatewayAccount.address)).toBe(false);

    const dataDir = join(dir, "delayed");
    const settlerKeyFile = join(dir, "settler-key.json");
    const passphrase = "settler passphrase for tests";
    await writeKeystore(settlerKeyFile, await createKeystore(settlerKey, passphrase));
    let gateway = await startGateway({
      deployment: delayed,
      dataDir,
      settlerKeyFile,
      env: { GBT_SETTLER_PASSPHRASE: passphrase },
    });
    try {
      for (const node of nodes) expect((await node.register(gateway.url)).status).toBe(200);
      const account = gateway.accounts.createAccount({ name: "d" });
      const apiKey = gateway.accounts.createApiKey(account.id, "k").key;
      await serve(gateway, apiKey, 4);

      const first = await settle(gateway);
      expect(first).toMatchObject({ posted: true, epoch: "1" });
      const tx = await getTransaction(admin, { hash: first.txHash as Hex });
      expect(getAddress(tx.from)).toBe(settler.address);

      // Pending: no proof to claim with yet, and the answer says when it takes effect.
      const earned = (node: FakeNode) =>
        BigInt(gateway.ledger.balanceMicro(providerAccount(node.account.address)));
      const a = nodes.find((node) => earned(node) > 0n) as FakeNode;
      const early = await proofOf(gateway, a.account.address);
      expect(early.status).toBe(404);
      expect(early.body.error?.message).toMatch(/epoch 1 takes effect at/);

      // More earnings while epoch 1 waits: nothing is posted over it; the next root will carry them.
      await serve(gateway, apiKey, 2);
      expect(await settle(gateway)).toEqual({ posted: false, reason: "pending", epoch: "1" });

      await advanceChainTime(3600);
      const proof = await proofOf(gateway, a.account.address);
      expect(proof.status).toBe(200);
      expect(proof.body.epoch).toBe("1");
      const { amount } = await claim(chainClient(a.account), {
        deployment: delayed,
        node: a.account.address,
        cumulative: BigInt(proof.body.cumulative),
        proof: proof.body.proof,
      });
      expect(amount).toBe(BigInt(proof.body.cumulative));

      // Epoch 2 carries the later earnings; while it waits, proofs stay those of epoch 1 (in effect).
      const second = await settle(gateway);
      expect(second).toMatchObject({ posted: true, epoch: "2" });
      expect((await proofOf(gateway, a.account.address)).body.epoch).toBe("1");

      // Governance cancels epoch 2; the gateway does not post the same root again.
      await cancelPendingRoot(admin, { deployment: delayed });
      expect(await settle(gateway)).toEqual({ posted: false, reason: "unchanged", epoch: "1" });
      await gateway.close(1_000);
      gateway = await startGateway({
        deployment: delayed,
        dataDir,
        settlerKeyFile,
        env: { GBT_SETTLER_PASSPHRASE: passphrase },
      });
      await advanceChainTime(3600);
      expect((await proofOf(gateway, a.account.address)).body.epoch).toBe("1");
    } finally {
      await gateway.close(1_000);
    }
  });

  it("refuses to start with a settler key it cannot unlock", async () => {
    const settlerKeyFile = join(dir, "locked-settler-key.json");
    await writeKeystore(settlerKeyFile, await createKeystore(generatePrivateKey(), "right"));
    const started = await startGateway({
      deployment,
      dataDir: join(dir, "locked"),
      settlerKeyFile,
      env: {},
    }).then(
      (gateway) => gateway.close(1_000),
      (error: unknown) => error,
    );
    expect(started).toMatchObject({ code: "PASSPHRASE_REQUIRED" });
  });
});
