/**
 * The minimum-stake gate against a real anvil with the gbt contracts deployed: a node with no
 * stake and one below the minimum are refused (403 insufficient_stake, saying how much more to
 * stake), one at or above it is admitted, a chain that does not answer admits nobody (503
 * stake_unavailable), and a minimum of 0 never reads the chain.
 */
import { createServer } from "node:net";
import {
  ANVIL_DEV_PRIVATE_KEY,
  deployAll,
  type GbtDeployment,
  type RunningAnvil,
  stake,
  startAnvil,
} from "@gbt/contracts";
import { errorBody, GbtError, HttpError } from "@gbt/protocol";
import pino from "pino";
import { type Address, createClient, http, parseEther } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../gateway-config.js";
import { createStakeGate, gbtToWei, readStakeFromChain, stakeGateFromConfig } from "./stake-gate.js";

const logger = pino({ level: "silent" });
let anvil: RunningAnvil;
let deployment: GbtDeployment;
const unstaked = privateKeyToAccount(generatePrivateKey()).address;
const below = privateKeyToAccount(generatePrivateKey()).address;
const exact = privateKeyToAccount(generatePrivateKey()).address;
const above = privateKeyToAccount(generatePrivateKey()).address;

const clientAt = (rpcUrl: string) =>
  createClient({
    chain: { ...foundry, rpcUrls: { default: { http: [rpcUrl] } } },
    transport: http(rpcUrl, { retryCount: 0 }),
    cacheTime: 0,
  });

async function refusal(promise: Promise<void>): Promise<HttpError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("the node was admitted");
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  anvil = await startAnvil();
  const admin = createClient({
    account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY),
    chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
    transport: http(anvil.rpcUrl),
    cacheTime: 0,
  });
  deployment = await deployAll(admin, { settler: admin.account.address });
  // Governance stakes on the nodes' behalf: the stake backs the node named, whoever pays it.
  await stake(admin, { deployment, node: below, amount: parseEther("12.5") });
  await stake(admin, { deployment, node: exact, amount: parseEther("100") });
  await stake(admin, { deployment, node: above, amount: parseEther("250") });
});

afterAll(async () => {
  await anvil?.stop();
});

describe("the stake gate on a real chain", () => {
  const gate = () =>
    createStakeGate({
      minStakeGbt: 100,
      readStake: readStakeFromChain({
        publicClient: clientAt(anvil.rpcUrl),
        stakeAddress: deployment.staking,
      }),
      logger,
    });

  it("refuses a node below the minimum with 403 insufficient_stake, saying what to stake", async () => {
    const error = await refusal(gate().check(below));
    expect(error.status).toBe(403);
    expect(errorBody(error).error).toMatchObject({ code: "insufficient_stake", type: "permission_error" });
    expect(error.message).toBe(
      `Node ${below} has 12.5 GBT staked; this gateway requires 100 GBT (routing.minStakeGbt). Stake 87.5 GBT more with \`gbt stake deposit 87.5\`; the node registers again on its own.`,
    );
  });

  it("refuses a node with no stake at all", async () => {
    const error = await refusal(gate().check(unstaked));
    expect(error.status).toBe(403);
    expect(error.message).toContain(`Node ${unstaked} has 0 GBT staked`);
  });

  it("admits a node at or above the minimum, a decimal minimum included", async () => {
    await expect(gate().check(exact)).resolves.toBeUndefined();
    await expect(gate().check(above)).resolves.toBeUndefined();
    const decimal = createStakeGate({
      minStakeGbt: "12.5",
      readStake: readStakeFromChain({
        publicClient: clientAt(anvil.rpcUrl),
        stakeAddress: deployment.staking,
      }),
      logger,
    });
    await expect(decimal.check(below)).resolves.toBeUndefined();
    expect((await refusal(decimal.check(unstaked))).status).toBe(403);
  });

  it("admits nobody while the chain cannot be read: 503 stake_unavailable, which the node retries", async () => {
    const down = createStakeGate({
      minStakeGbt: 100,
      readStake: readStakeFromChain({
        publicClient: clientAt(`http://127.0.0.1:${await deadPort()}`),
        stakeAddress: deployment.staking,
      }),
      logger,
    });
    for (const node of [above, below]) {
      const error = await refusal(down.check(node));
      expect(error.status).toBe(503);
      expect(errorBody(error).error.code).toBe("stake_unavailable");
      expect(error.headers["retry-after"]).toBe("30");
      expect(error.message).toContain("cannot read");
    }
    // A chain that answers, but with no NodeStaking at the address, is no better.
    const wrongContract = createStakeGate({
      minStakeGbt: 100,
      readStake: readStakeFromChain({ publicClient: clientAt(anvil.rpcUrl), stakeAddress: unstaked }),
      logger,
    });
    expect((await refusal(wrongContract.check(above))).status).toBe(503);
  });

  it("reads no chain at all when the minimum is 0", async () => {
    let reads = 0;
    const off = createStakeGate({
      minStakeGbt: "0",
      readStake: async () => {
        reads++;
        return 0n;
      },
      logger,
    });
    expect(off.minStakeWei).toBe(0n);
    await off.check(unstaked as Address);
    expect(reads).toBe(0);
  });
});

describe("stakeGateFromConfig", () => {
  it("builds no gate for a minimum of 0, and one reading the configured chain otherwise", async () => {
    expect(stakeGateFromConfig(parseGatewayConfig({}), logger)).toBeUndefined();
    const config = parseGatewayConfig({
      routing: { minStakeGbt: "100" },
      settlement: {
        rpcUrl: anvil.rpcUrl,
        chainId: 31_337,
        contract: deployment.settlement,
        staking: deployment.staking,
      },
    });
    const gate = stakeGateFromConfig(config, logger);
    expect(gate?.minStakeWei).toBe(parseEther("100"));
    await expect(gate?.check(above)).resolves.toBeUndefined();
    expect((await refusal(gate?.check(below) ?? Promise.resolve())).status).toBe(403);
  });
});

describe("gbtToWei", () => {
  it("refuses what is not an amount of GBT and converts what is", () => {
    for (const bad of [
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      "1e3",
      "12,5",
      "",
      "0.0000000000000000001",
    ]) {
      expect(() => gbtToWei(bad)).toThrow(GbtError);
    }
    expect(gbtToWei(100)).toBe(parseEther("100"));
    expect(gbtToWei("12.5")).toBe(parseEther("12.5"));
    expect(gbtToWei(1e-7)).toBe(parseEther("0.0000001"));
    expect(gbtToWei(0)).toBe(0n);
  });
});
