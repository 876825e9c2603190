/**
 * `gbt node earnings` against a gateway on loopback that signs earnings views with real keys (a
 * real HTTP server: `GET /v1/gateway/info`, `GET /v1/nodes/:node/earnings`, and the settlement
 * proofs route), and a real anvil with the gbt contracts for the chain's side. Hostile cases first:
 * no gateway configured, a gateway that is not there, a view signed by another key (also when the
 * gateway's info names that key but the node pins its own), a view for another node, a payload
 * edited after signing, an expired view. Then: the view's numbers, the chain's settled, paid and
 * claimable amounts (read without unlocking the node key), and the CLI process's table and JSON.
 *
 * The CLI-process cases need the command in oclif.manifest.json (`npm run manifest`).
 */

import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  ANVIL_DEV_PRIVATE_KEY,
  buildCumulativeTree,
  deployAll,
  type GbtDeployment,
  postRoot,
  type RunningAnvil,
  startAnvil,
  writeChainConfig,
} from "@gbt/contracts";
import { type EarningsPeriod, type EarningsViewPayloadInput, isGbtError, signObject } from "@gbt/protocol";
import { createClient, getAddress, http, type PrivateKeyAccount } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readNodeEarnings, renderNodeEarnings } from "../../node-earnings.js";
import { onlyJson, runCli, tempHome } from "../../testing/run-cli.js";

const CHAIN_ID = 31_337;
const WEI_PER_MICRO = 10n ** 12n;
const DAY = 86_400_000;
const gatewayKey = privateKeyToAccount(generatePrivateKey());
const impostor = privateKeyToAccount(generatePrivateKey());
const nodeKey = privateKeyToAccount(generatePrivateKey());

/** How the loopback gateway answers: which key signs, whom the view is for, and what else. */
const behaviour: {
  signer: PrivateKeyAccount;
  infoAddress: string;
  audience: string;
  tamper: boolean;
  issuedAt?: number;
  settlement: EarningsViewPayloadInput["settlement"];
  proof: { cumulative: bigint; proof: string[]; epoch: bigint; root: string } | null;
} = {
  signer: gatewayKey,
  infoAddress: gatewayKey.address,
  audience: nodeKey.address,
  tamper: false,
  settlement: null,
  proof: null,
};

const period = (from: number | null, to: number, requests: number, earnedMicro: number): EarningsPeriod => ({
  from,
  to,
  requests,
  promptTokens: requests * 12,
  completionTokens: requests * 8,
  debitMicro: earnedMicro * 2,
  earnedMicro,
  heldMicro: 0,
  receipts: { valid: requests, missing: 0, invalid: 0, mismatch: 0 },
  multipliers:
    requests === 0
      ? null
      : { providerShare: 0.8, rampFactor: 0.25, switchPenalty: 1, bounty: 1.2, reputation: 1 },
});

function payloadFor(node: string, at: number): EarningsViewPayloadInput {
  return {
    node,
    gateway: behaviour.signer.address,
    asOf: at,
    periods: {
      today: period(Math.floor(at / DAY) * DAY, at + 1, 3, 1_500),
      week: period(at - 7 * DAY, at + 1, 10, 5_000),
      epoch: period(at - DAY, at + 1, 4, 2_000),
      allTime: period(null, at + 1, 25, 12_345_678),
    },
    latestMultipliers: { providerShare: 0.8, rampFactor: 0.3, switchPenalty: 1, bounty: 1, reputation: 0.9 },
    settlement: behaviour.settlement,
  };
}

let server: Server;
let gatewayUrl: string;
let home: string;
let anvil: RunningAnvil;
let deployment: GbtDeployment;

async function answer(path: string): Promise<{ status: number; body: unknown }> {
  if (path === "/v1/gateway/info") {
    return {
      status: 200,
      body: { address: behaviour.infoAddress, chainId: CHAIN_ID, heartbeatIntervalMs: 5_000 },
    };
  }
  const earnings = /^\/v1\/nodes\/([^/]+)\/earnings$/.exec(path);
  if (earnings) {
    const at = Date.now();
    const issuedAt = behaviour.issuedAt ?? Math.floor(at / 1000);
    const view = await signObject(behaviour.signer, {
      kind: "EarningsView",
      chainId: CHAIN_ID,
      message: {
        gateway: behaviour.signer.address,
        node: behaviour.audience,
        issuedAt,
        expiresAt: issuedAt + 300,
      },
      payload: payloadFor(behaviour.audience, at),
    });
    if (behaviour.tamper) {
      const payload = view.payload as ReturnType<typeof payloadFor>;
      payload.periods.week.earnedMicro *= 100;
    }
    return { status: 200, body: { view } };
  }
  if (path.startsWith("/v1/settlement/proofs/") && behaviour.proof) {
    const { proof } = behaviour;
    return {
      status: 200,
      body: {
        node: nodeKey.address,
        cumulative: proof.cumulative.toString(),
        proof: proof.proof,
        epoch: proof.epoch.toString(),
        root: proof.root,
        contract: deployment.settlement,
        chainId: CHAIN_ID,
      },
    };
  }
  return {
    status: 404,
    body: {
      error: { message: "No settlement epoch has been posted yet.", type: "not_found", code: "not_found" },
    },
  };
}

async function writeNodeConfig(extra: Record<string, unknown> = {}) {
  await mkdir(join(home, "config"), { recursive: true });
  await writeFile(
    join(home, "config", "config.json"),
    JSON.stringify({
      version: 1,
      node: { address: nodeKey.address, mode: "network", chainId: CHAIN_ID, owners: [] },
      backend: { kind: "ollama" },
      gateway: { url: gatewayUrl },
      ...extra,
    }),
  );
}

const env = () => ({ GBT_HOME: home });
const errorCode = async (run: Promise<unknown>) => {
  try {
    await run;
    return "accepted";
  } catch (error) {
    return isGbtError(error) ? error.code : String(error);
  }
};
const reset = () => {
  behaviour.signer = gatewayKey;
  behaviour.infoAddress = gatewayKey.address;
  behaviour.audience = nodeKey.address;
  behaviour.tamper = false;
  delete behaviour.issuedAt;
  behaviour.settlement = null;
};

beforeAll(async () => {
  server = createServer((req, res) => {
    answer(new URL(req.url ?? "/", "http://x").pathname).then(
      ({ status, body }) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      },
      (error: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: String(error), type: "internal" } }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  home = await tempHome("gbt-node-earnings-");
  anvil = await startAnvil();
  const admin = createClient({
    account: privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY),
    chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
    transport: http(anvil.rpcUrl),
    cacheTime: 0,
  });
  // The deployer posts roots itself here (the settler role), with no delay.
  deployment = await deployAll(admin, { settler: admin.account.address, rootDelaySeconds: 0n });
  const tree = buildCumulativeTree([{ node: nodeKey.address, cumulative: 12_000_000n * WEI_PER_MICRO }]);
  await postRoot(admin, { deployment, epoch: 1n, root: tree.root, total: tree.total });
  const entry = tree.proofFor(nodeKey.address);
  behaviour.proof = entry
    ? { cumulative: entry.cumulative, proof: entry.proof, epoch: 1n, root: tree.root }
    : null;
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await anvil?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("gbt node earnings: refusals", () => {
  it("says what to do without a gateway, and when the gateway is not there", async () => {
    reset();
    const bare = await tempHome("gbt-node-earnings-bare-");
    try {
      const error = await readNodeEarnings({ env: { GBT_HOME: bare }, chain: false }).catch(
        (e: unknown) => e,
      );
      expect(isGbtError(error, "MISSING_INPUT")).toBe(true);
      expect((error as { hint: string }).hint).toContain("--gateway");
      const gone = await readNodeEarnings({
        env: { GBT_HOME: bare },
        gatewayUrl: "http://127.0.0.1:9",
        node: nodeKey.address,
        chain: false,
      }).catch((e: unknown) => e);
      expect(isGbtError(gone, "GATEWAY_UNREACHABLE")).toBe(true);
      expect((gone as { hint: string }).hint).toContain("gateway.url");
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });

  it("refuses a view signed by another key, for another node, edited, or expired", async () => {
    await writeNodeConfig();
    reset();
    const read = () => readNodeEarnings({ env: env(), chain: false });
    expect(await errorCode(read())).toBe("accepted");

    behaviour.signer = impostor;
    const forged = await read().catch((e: unknown) => e);
    expect(isGbtError(forged, "UNKNOWN_SIGNER")).toBe(true);
    expect((forged as Error).message).toContain("nothing of it is shown");

    reset();
    behaviour.audience = privateKeyToAccount(generatePrivateKey()).address;
    expect(await errorCode(read())).toBe("WRONG_AUDIENCE");

    reset();
    behaviour.tamper = true;
    expect(await errorCode(read())).toBe("PAYLOAD_HASH_MISMATCH");

    reset();
    behaviour.issuedAt = Math.floor(Date.now() / 1000) - 3_600;
    expect(await errorCode(read())).toBe("EXPIRED");
  });

  it("trusts the key the node config pins over the one the gateway's info names", async () => {
    reset();
    // Someone answers in the gateway's name: its info names the impostor, who signs the view.
    behaviour.signer = impostor;
    behaviour.infoAddress = impostor.address;
    await writeNodeConfig();
    expect(await errorCode(readNodeEarnings({ env: env(), chain: false }))).toBe("accepted");
    await writeNodeConfig({ link: { gatewayAddress: gatewayKey.address } });
    expect(await errorCode(readNodeEarnings({ env: env(), chain: false }))).toBe("UNKNOWN_SIGNER");
    reset();
    const pinned = await readNodeEarnings({ env: env(), chain: false });
    expect(pinned.pinned).toBe(true);
    await writeNodeConfig();
  });
});

describe("gbt node earnings: what it shows", () => {
  it("shows the verified view, and says when the gateway does not settle on chain", async () => {
    await writeNodeConfig();
    reset();
    const result = await readNodeEarnings({ env: env() });
    expect(result).toMatchObject({
      node: nodeKey.address,
      gatewayUrl,
      gateway: gatewayKey.address,
      pinned: false,
    });
    expect(result.earnings.periods.week).toMatchObject({ requests: 10, earnedMicro: 5_000 });
    expect(result.chain).toBeNull();
    expect(result.chainNote).toBe("This gateway does not settle on chain.");
    const text = renderNodeEarnings(result);
    expect(text).toMatch(/Last 7 days\s+10\s+120\s+80\s+0\.005000\s+0/);
    expect(text).toMatch(/All time\s+25\s+300\s+200\s+12\.345678/);
    expect(text).toContain("ramp-up 25%");
    expect(text).toContain("bounty ×1.2");
  });

  it("reads settled, paid and claimable from the chain without the node key", async () => {
    reset();
    await writeNodeConfig();
    behaviour.settlement = {
      chainId: CHAIN_ID,
      contract: getAddress(deployment.settlement),
      weiPerMicroCredit: WEI_PER_MICRO.toString(),
      earnedWei: (12_345_678n * WEI_PER_MICRO).toString(),
      latestRoot: null,
      unpostedWei: (345_678n * WEI_PER_MICRO).toString(),
    };
    // No chain.json in this home yet: the view stands, the chain's side is named as missing.
    const offChain = await readNodeEarnings({ env: env() });
    expect(offChain.chain).toBeNull();
    expect(offChain.chainNote).toContain("No chain config");

    await writeChainConfig(join(home, "config", "chain.json"), {
      version: 1,
      rpcUrl: anvil.rpcUrl,
      deployment,
    });
    // No keystore in this home: reading the chain needs none.
    const onChain = await readNodeEarnings({ env: env() });
    expect(onChain.chain).toMatchObject({
      paid: "0",
      earned: (12_000_000n * WEI_PER_MICRO).toString(),
      claimable: (12_000_000n * WEI_PER_MICRO).toString(),
      epoch: "1",
      pending: null,
    });
    const text = renderNodeEarnings(onChain);
    expect(text).toContain("Claimable now:              12 GBT (gbt payout claim)");
    expect(text).toContain("Not in a root yet:          0.345678 GBT");

    // A gateway settling to another contract is said, not mixed with this chain's numbers.
    behaviour.settlement = { ...behaviour.settlement, contract: getAddress(`0x${"12".repeat(20)}`) };
    const elsewhere = await readNodeEarnings({ env: env() });
    expect(elsewhere.chain).toBeNull();
    expect(elsewhere.chainNote).toContain("not this home's chain");
  });
});

describe("gbt node earnings (real CLI process; needs the command in oclif.manifest.json)", () => {
  it("--json prints the whole result; a forged view exits with the auth code and an error document", async () => {
    reset();
    await writeNodeConfig();
    const ok = await runCli(["node", "earnings", "--no-chain", "--json"], env());
    expect(ok.exitCode, ok.stderr).toBe(0);
    const body = onlyJson<{ node: string; earnings: { periods: { week: { earnedMicro: number } } } }>(
      ok.stdout,
    );
    expect(body.node).toBe(nodeKey.address);
    expect(body.earnings.periods.week.earnedMicro).toBe(5_000);

    const table = await runCli(["node", "earnings", "--gateway", gatewayUrl, "--no-chain"], env());
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toContain("Period");
    expect(table.stdout).toContain("Last 7 days");

    behaviour.signer = impostor;
    const forged = await runCli(["node", "earnings", "--json"], env());
    expect(forged.exitCode).not.toBe(0);
    expect(onlyJson<{ error: { code: string } }>(forged.stdout).error.code).toBe("UNKNOWN_SIGNER");
    reset();
  });
});
