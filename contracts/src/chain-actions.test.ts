/**
 * The actions against a real anvil: deploy, stake, unbond, an early withdraw refused, a withdraw
 * after the delay, a cumulative root whose proofs verify on chain once its delay has passed (anvil's
 * clock advanced, never slept), a claim that pays once, a forged proof refused, a wrong root that
 * governance cancels before it pays, a root above the per-epoch bound refused, and a manifest
 * committed with stake.
 */
import { isGbtError } from "@gbt/protocol";
import { createClient, http, parseEther, publicActions, walletActions } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelPendingRoot } from "./actions/cancel-pending-root.js";
import { claim } from "./actions/claim.js";
import { deployAll } from "./actions/deploy-all.js";
import { postRoot } from "./actions/post-root.js";
import { publishManifest } from "./actions/publish-manifest.js";
import { readGbtBalance } from "./actions/read-gbt-balance.js";
import { readPayout } from "./actions/read-payout.js";
import { readSettlementState } from "./actions/read-settlement-state.js";
import { readStake } from "./actions/read-stake.js";
import { stake } from "./actions/stake.js";
import { transferGbt } from "./actions/transfer-gbt.js";
import { unbond } from "./actions/unbond.js";
import { withdraw } from "./actions/withdraw.js";
import { buildCumulativeTree } from "./cumulative-merkle-tree.js";
import type { GbtDeployment } from "./deployment.js";
import { ANVIL_DEV_PRIVATE_KEY, type RunningAnvil, startAnvil } from "./start-anvil.js";

let anvil: RunningAnvil;
let deployment: GbtDeployment;
const ROOT_DELAY = 3600;
const settlerKey = generatePrivateKey();
const nodeKey = generatePrivateKey();

const client = (key: `0x${string}`) =>
  createClient({
    chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
    transport: http(anvil.rpcUrl),
    account: privateKeyToAccount(key),
    cacheTime: 0,
  })
    .extend(publicActions)
    .extend(walletActions);

/** Moves anvil's clock (never the test's): what a delay on chain waits for. */
async function advanceChainTime(seconds: number) {
  const admin = client(ANVIL_DEV_PRIVATE_KEY);
  await admin.request({ method: "evm_increaseTime" as never, params: [seconds] as never });
  await admin.request({ method: "evm_mine" as never, params: [] as never });
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGbtError(error) ? error.code : error).toBe(code);
}

beforeAll(async () => {
  anvil = await startAnvil();
  const admin = client(ANVIL_DEV_PRIVATE_KEY);
  const settler = privateKeyToAccount(settlerKey).address;
  const node = privateKeyToAccount(nodeKey).address;
  deployment = await deployAll(admin, {
    settler,
    unbondingDelaySeconds: 3600n,
    rootDelaySeconds: BigInt(ROOT_DELAY),
    maxEpochLiability: parseEther("100"),
    minPublisherStake: parseEther("10"),
  });
  for (const to of [settler, node]) await admin.sendTransaction({ to, value: parseEther("10") });
  await transferGbt(admin, { token: deployment.token, to: node, amount: parseEther("1000") });
});

afterAll(async () => {
  await anvil?.stop();
});

describe("@gbt/contracts actions on a real anvil", () => {
  it("funds Settlement with the whole rewards pool at deploy", async () => {
    const admin = client(ANVIL_DEV_PRIVATE_KEY);
    expect(await readGbtBalance(admin, { token: deployment.token, account: deployment.settlement })).toBe(
      parseEther("400000000"),
    );
  });

  it("stakes, refuses an early withdraw, and withdraws after the delay", async () => {
    const node = client(nodeKey);
    await expectCode(stake(node, { deployment, amount: parseEther("5000") }), "INSUFFICIENT_FUNDS");
    await stake(node, { deployment, amount: parseEther("600") });
    await unbond(node, { deployment, amount: parseEther("200") });
    const status = await readStake(node, { deployment, node: node.account.address });
    expect(status.staked).toBe(parseEther("400"));
    expect(status.unbonding).toBe(parseEther("200"));
    await expectCode(unbond(node, { deployment, amount: parseEther("401") }), "INSUFFICIENT_FUNDS");
    await expectCode(withdraw(node, { deployment }), "UNBONDING_NOT_FINISHED");
    await advanceChainTime(3600);
    const { amount } = await withdraw(node, { deployment });
    expect(amount).toBe(parseEther("200"));
    expect(await readGbtBalance(node, { token: deployment.token, account: node.account.address })).toBe(
      parseEther("600"),
    );
  });

  it("posts a cumulative root whose proofs verify on chain after its delay; claims pay once; a forged proof reverts", async () => {
    const settler = client(settlerKey);
    const nodeAddress = privateKeyToAccount(nodeKey).address;
    const others = [1, 2, 3, 4].map(() => privateKeyToAccount(generatePrivateKey()).address);
    const tree = buildCumulativeTree([
      { node: nodeAddress, cumulative: parseEther("3") },
      ...others.map((node, i) => ({ node, cumulative: parseEther(String(i + 1)) })),
    ]);
    await postRoot(settler, { deployment, epoch: 1n, root: tree.root, total: tree.total });
    const mine = tree.proofFor(nodeAddress);
    if (!mine) throw new Error("node missing from the tree");
    const node = client(nodeKey);
    // Pending: claims wait for the delay the contract enforces.
    const waiting = await readPayout(node, { deployment, node: nodeAddress });
    expect(waiting).toMatchObject({ epoch: 0n, pending: { epoch: 1n, root: tree.root, total: tree.total } });
    const early = await claim(node, {
      deployment,
      node: nodeAddress,
      cumulative: mine.cumulative,
      proof: mine.proof,
    }).catch((error: unknown) => error);
    expect(isGbtError(early) && early.code).toBe("NOTHING_TO_CLAIM");
    expect(isGbtError(early) && early.details?.effectiveAt).toBe(
      new Date((waiting.pending?.effectiveAt ?? 0) * 1000).toISOString(),
    );
    await advanceChainTime(ROOT_DELAY);
    expect(await readPayout(node, { deployment, node: nodeAddress })).toMatchObject({
      epoch: 1n,
      root: tree.root,
      pending: null,
    });
    const before = await readGbtBalance(node, { token: deployment.token, account: nodeAddress });
    await expectCode(
      claim(node, { deployment, node: nodeAddress, cumulative: parseEther("30"), proof: mine.proof }),
      "INVALID_PROOF",
    );
    const { amount } = await claim(node, {
      deployment,
      node: nodeAddress,
      cumulative: mine.cumulative,
      proof: mine.proof,
    });
    expect(amount).toBe(parseEther("3"));
    expect(await readGbtBalance(node, { token: deployment.token, account: nodeAddress })).toBe(
      before + parseEther("3"),
    );
    await expectCode(
      claim(node, { deployment, node: nodeAddress, cumulative: mine.cumulative, proof: mine.proof }),
      "NOTHING_TO_CLAIM",
    );
    // Every other proof of the five-leaf (odd) tree verifies on chain too; anyone may submit another
    // node's claim, and the tokens go to that node.
    for (const other of others) {
      const entry = tree.proofFor(other);
      if (!entry) throw new Error("node missing from the tree");
      await claim(node, { deployment, node: other, cumulative: entry.cumulative, proof: entry.proof });
      expect(await readGbtBalance(node, { token: deployment.token, account: other })).toBe(entry.cumulative);
    }
    expect((await readPayout(node, { deployment, node: nodeAddress })).paid).toBe(parseEther("3"));
  });

  it("lets governance cancel a wrong pending root before it pays, and bounds new liability per root", async () => {
    const settler = client(settlerKey);
    const nodeAddress = privateKeyToAccount(nodeKey).address;
    const node = client(nodeKey);
    const paid = (await readPayout(node, { deployment, node: nodeAddress })).paid;
    const { effective } = await readSettlementState(node, { deployment });
    const wrong = buildCumulativeTree([{ node: nodeAddress, cumulative: paid + parseEther("50") }]);
    // A root adding more than the bound (100 GBT over the effective total) is refused up front.
    await expectCode(
      postRoot(settler, {
        deployment,
        epoch: 2n,
        root: wrong.root,
        total: effective.total + parseEther("101"),
      }),
      "POLICY_DENIED",
    );
    await postRoot(settler, {
      deployment,
      epoch: 2n,
      root: wrong.root,
      total: effective.total + parseEther("50"),
    });
    // One root waits at a time; the settler cannot cancel it, governance can.
    await expectCode(
      postRoot(settler, { deployment, epoch: 3n, root: wrong.root, total: effective.total }),
      "CONFLICT",
    );
    await expectCode(cancelPendingRoot(settler, { deployment }), "UNAUTHORIZED");
    await cancelPendingRoot(client(ANVIL_DEV_PRIVATE_KEY), { deployment });
    expect((await readSettlementState(node, { deployment })).pending).toBeNull();
    await advanceChainTime(ROOT_DELAY);
    const entry = wrong.proofFor(nodeAddress);
    if (!entry) throw new Error("node missing from the tree");
    await expectCode(
      claim(node, { deployment, node: nodeAddress, cumulative: entry.cumulative, proof: entry.proof }),
      "INVALID_PROOF",
    );
    expect((await readPayout(node, { deployment, node: nodeAddress })).paid).toBe(paid);
    await expectCode(cancelPendingRoot(client(ANVIL_DEV_PRIVATE_KEY), { deployment }), "NOT_FOUND");
  });

  it("commits a model manifest with the publisher's stake", async () => {
    const node = client(nodeKey);
    const manifestHash = `0x${"ab".repeat(32)}` as const;
    await publishManifest(node, {
      deployment,
      manifestHash,
      uri: "https://models.example/tiny.yaml",
      stake: parseEther("10"),
    });
    await expectCode(
      publishManifest(node, {
        deployment,
        manifestHash,
        uri: "https://models.example/tiny.yaml",
        stake: parseEther("10"),
      }),
      "ALREADY_EXISTS",
    );
  });
});
