/**
 * Where this node's earnings stand: paid so far on chain, and (when the gateway answers) what its
 * proof of the root in effect says it earned in total, hence what a claim would pay now; and when
 * a posted root still waits for the contract's delay, when it takes effect.
 */
import { readGbtBalance, readPayout } from "@gbt/contracts";
import { readConfigIfPresent, resolvePaths } from "@gbt/node";
import { GbtError, isGbtError } from "@gbt/protocol";
import type { ChainSession } from "./chain-session.js";
import { fetchPayoutProof, type PayoutProof } from "./payout-proof.js";

export interface PayoutStatusResult {
  node: string;
  gatewayUrl: string | null;
  balance: string;
  paid: string;
  /** Cumulative earnings in the gateway's latest proof; null when there is none yet. */
  earned: string | null;
  claimable: string;
  /** The settlement epoch in effect (claims verify against its root). */
  epoch: string;
  /** A posted epoch not yet in effect, and when it takes effect (ISO time); null when none waits. */
  pending: { epoch: string; effectiveAt: string } | null;
  /** Why `earned` is null, when it is. */
  note?: string;
}

/** The gateway whose proofs to use: the flag, then chain.json, then the gateway `gbt serve` links to. */
export async function resolvePayoutGateway(
  flag: string | undefined,
  session: ChainSession,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (flag) return flag;
  if (session.gatewayUrl) return session.gatewayUrl;
  const config = await readConfigIfPresent(resolvePaths(env).configFile).catch(() => undefined);
  return config?.gateway?.url;
}

export async function readPayoutStatus(
  session: ChainSession,
  gatewayUrl: string | undefined,
): Promise<{ status: PayoutStatusResult; proof: PayoutProof | undefined }> {
  const node = session.client.account.address;
  const [chain, balance] = await Promise.all([
    readPayout(session.client, { deployment: session.deployment, node }),
    readGbtBalance(session.client, { token: session.deployment.token, account: node }),
  ]);
  let proof: PayoutProof | undefined;
  let note: string | undefined;
  if (gatewayUrl) {
    try {
      proof = await fetchPayoutProof(gatewayUrl, node);
    } catch (error) {
      if (!isGbtError(error, "NOTHING_TO_CLAIM")) throw error;
      note = error.message;
    }
  } else {
    note = "No gateway known: pass --gateway URL.";
  }
  if (proof && proof.contract !== session.deployment.settlement) {
    throw new GbtError(
      "WRONG_CHAIN",
      `The gateway settles to ${proof.contract}, not this chain's ${session.deployment.settlement}.`,
      {
        details: { gatewayUrl, gatewaySettlement: proof.contract, configured: session.deployment.settlement },
        hint: "Point --gateway at the gateway of this chain, or run `gbt chain dev` again.",
      },
    );
  }
  const claimable = proof && proof.cumulative > chain.paid ? proof.cumulative - chain.paid : 0n;
  return {
    proof,
    status: {
      node,
      gatewayUrl: gatewayUrl ?? null,
      balance: balance.toString(),
      paid: chain.paid.toString(),
      earned: proof ? proof.cumulative.toString() : null,
      claimable: claimable.toString(),
      epoch: chain.epoch.toString(),
      pending: chain.pending
        ? {
            epoch: chain.pending.epoch.toString(),
            effectiveAt: new Date(chain.pending.effectiveAt * 1000).toISOString(),
          }
        : null,
      ...(note ? { note } : {}),
    },
  };
}
