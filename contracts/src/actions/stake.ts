/** Stakes `amount` GBT from the client's account for `node` (approving NodeStaking first when needed). */
import { GbtError } from "@gbt/protocol";
import { type Address, formatUnits, type Hash } from "viem";
import type { ChainWriter } from "../chain-client.js";
import type { GbtDeployment } from "../deployment.js";
import { nodeStakingAbi } from "../generated/abis.js";
import { sendContractTransaction } from "../send-contract-transaction.js";
import { ensureAllowance } from "./ensure-allowance.js";
import { readGbtBalance } from "./read-gbt-balance.js";

export interface StakeParameters {
  deployment: Pick<GbtDeployment, "token" | "staking">;
  /** The node id the stake backs; default the client's account. */
  node?: Address;
  amount: bigint;
}

export async function stake(client: ChainWriter, parameters: StakeParameters): Promise<{ hash: Hash }> {
  const { deployment, amount } = parameters;
  if (amount <= 0n) throw new GbtError("INVALID_INPUT", "The amount to stake must be above zero.");
  const balance = await readGbtBalance(client, { token: deployment.token, account: client.account.address });
  if (balance < amount) {
    throw new GbtError(
      "INSUFFICIENT_FUNDS",
      `The account ${client.account.address} holds ${formatUnits(balance, 18)} GBT; staking needs ${formatUnits(amount, 18)} GBT.`,
      {
        details: { account: client.account.address, balance: balance.toString(), amount: amount.toString() },
        hint: "Get GBT into the account first (on a dev chain, `gbt chain dev` funds the node key).",
      },
    );
  }
  await ensureAllowance(client, { token: deployment.token, spender: deployment.staking, amount });
  const { hash } = await sendContractTransaction(client, {
    address: deployment.staking,
    abi: nodeStakingAbi,
    functionName: "stake",
    args: [parameters.node ?? client.account.address, amount],
    action: "stake",
  });
  return { hash };
}
