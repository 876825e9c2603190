/** Fetches this node's payout proof from the gateway (`GET /v1/settlement/proofs/:node`), parsed strictly. */
import { GbtError } from "@gbt/protocol";
import { type Address, getAddress, type Hex } from "viem";
import { z } from "zod";

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/);
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/)
  .transform((value) => getAddress(value));

export const payoutProofSchema = z.strictObject({
  node: address,
  cumulative: z.string().regex(/^\d{1,78}$/),
  proof: z.array(hex32).max(64),
  epoch: z.string().regex(/^\d{1,20}$/),
  root: hex32,
  contract: address,
  chainId: z.number().int().positive(),
});

export interface PayoutProof {
  node: Address;
  cumulative: bigint;
  proof: Hex[];
  epoch: bigint;
  root: Hex;
  contract: Address;
  chainId: number;
}

export async function fetchPayoutProof(gatewayUrl: string, node: Address): Promise<PayoutProof> {
  const url = new URL(`/v1/settlement/proofs/${node}`, gatewayUrl);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  } catch (cause) {
    throw new GbtError("GATEWAY_UNREACHABLE", `Cannot reach the gateway at ${gatewayUrl}.`, {
      details: { gatewayUrl },
      hint: "Check --gateway (or the gateway in chain.json) and that the gateway runs with settlement on.",
      cause,
    });
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (response.status === 404) {
    const message = (body as { error?: { message?: string } } | undefined)?.error?.message;
    throw new GbtError("NOTHING_TO_CLAIM", message ?? `The gateway has no payout proof for ${node}.`, {
      details: { node, gatewayUrl },
      hint: "Earnings settle once per epoch after the node served paid requests; try again later.",
    });
  }
  if (!response.ok) {
    throw new GbtError(
      "GATEWAY_UNREACHABLE",
      `The gateway answered HTTP ${response.status} for the payout proof.`,
      {
        details: { gatewayUrl, status: response.status },
      },
    );
  }
  const parsed = payoutProofSchema.safeParse(body);
  if (!parsed.success) {
    throw new GbtError("INVALID_OBJECT", "The gateway's payout proof is malformed.", {
      details: { issues: parsed.error.issues.slice(0, 3) },
    });
  }
  const p = parsed.data;
  return {
    ...p,
    cumulative: BigInt(p.cumulative),
    proof: p.proof as Hex[],
    root: p.root as Hex,
    epoch: BigInt(p.epoch),
  };
}
