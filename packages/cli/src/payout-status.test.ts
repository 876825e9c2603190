/**
 * `gbt payout status` on a Settlement with a one-hour root delay (a real anvil): a posted root shows
 * as pending with the time it takes effect, and as the epoch in effect once anvil's clock passes
 * it (the chain's clock advanced, never a sleep).
 */
import {
  ANVIL_DEV_PRIVATE_KEY,
  buildCumulativeTree,
  deployAll,
  postRoot,
  type RunningAnvil,
  startAnvil,
} from "@gbt/contracts";
import { createClient, http, type PrivateKeyAccount, parseEther, toHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { getBlock } from "viem/actions";
import { foundry } from "viem/chains";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChainSession } from "./chain-session.js";
import { readPayoutStatus } from "./payout-status.js";

let anvil: RunningAnvil;

beforeAll(async () => {
  anvil = await startAnvil();
});

afterAll(async () => {
  await anvil?.stop();
});

const clientOf = (account: PrivateKeyAccount) =>
  createClient({
    account,
    chain: { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } },
    transport: http(anvil.rpcUrl),
    cacheTime: 0,
  });

describe("payout status with a root delay", () => {
  it("says when a pending root takes effect, then shows it in effect", async () => {
    const admin = clientOf(privateKeyToAccount(ANVIL_DEV_PRIVATE_KEY));
    const deployment = await deployAll(admin, { settler: admin.account.address, rootDelaySeconds: 3600n });
    const node = clientOf(privateKeyToAccount(generatePrivateKey()));
    await admin.request({
      method: "anvil_setBalance" as never,
      params: [node.account.address, toHex(parseEther("1"))] as never,
    });
    const session: ChainSession = { client: node, deployment, rpcUrl: anvil.rpcUrl, gatewayUrl: undefined };

    const tree = buildCumulativeTree([{ node: node.account.address, cumulative: parseEther("2") }]);
    await postRoot(admin, { deployment, epoch: 1n, root: tree.root, total: tree.total });
    const postedAt = Number((await getBlock(admin)).timestamp);
    const { status } = await readPayoutStatus(session, undefined);
    expect(status.epoch).toBe("0");
    expect(status.pending).toEqual({
      epoch: "1",
      effectiveAt: new Date((postedAt + 3600) * 1000).toISOString(),
    });

    await admin.request({ method: "evm_increaseTime" as never, params: [3600] as never });
    await admin.request({ method: "evm_mine" as never, params: [] as never });
    const after = (await readPayoutStatus(session, undefined)).status;
    expect(after).toMatchObject({ epoch: "1", pending: null });
  });
});
