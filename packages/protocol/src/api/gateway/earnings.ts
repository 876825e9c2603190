/**
 * A node's earnings as the gateway's ledger states them, signed: `GET /v1/nodes/:node/earnings`
 * answers `{ view }`, a `SignedObject<"EarningsView">` (signer: the gateway, audience: the node)
 * whose payload is the view below, bound by `viewHash`. Requests, tokens and micro-credits for
 * today (UTC), the last 7 days, the current settlement epoch (what no posted root holds yet) and
 * all time; the multipliers the gateway applied (weighted by what each request debited); and what
 * the latest posted root owes the node. What the chain paid is the chain's to say, not this view's.
 *
 * `fetchEarningsView` reads it and `verifyEarningsView` checks it (signature by the allowed gateway
 * key, audience, window, payload hash, then the payload's own schema and its binding to the message)
 * before anything in it is shown.
 */
import { type Address, isAddressEqual } from "viem";
import { z } from "zod";
import { GbtError } from "../../errors.js";
import { address, chainId } from "../../primitives.js";
import { type SignedObject, verifyObject } from "../../signed-object.js";
import type { GatewayTransport } from "./client/gateway-request.js";

const segment = encodeURIComponent;

/** `GET`: a node's signed earnings view. Public (per-IP limited): earnings settle on a public chain anyway. */
export const nodeEarningsPath = (node: string) => `/v1/nodes/${segment(node)}/earnings`;

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const timestampMs = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** An unsigned integer too large for a JSON number (wei, epochs), as decimal digits. */
const decimal = (digits: number) =>
  z.string().regex(new RegExp(`^\\d{1,${digits}}$`), "must be decimal digits");
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be a 0x-prefixed 32-byte hex string");
const txHash = z.string().regex(/^0x(?:[0-9a-fA-F]{64})?$/, "must be a transaction hash or 0x");
const factor = z.number().finite().min(0).max(1_000);

/** The multipliers behind a provider credit (receipt-settler.ts), weighted by each request's debit. */
export const earningsMultipliersSchema = z.strictObject({
  providerShare: factor,
  /** Ramp-up of a new node (pool/ramp-up.ts): 1 once ramped. */
  rampFactor: factor,
  /** Anti-flapping penalty after switching models: 1 when none. */
  switchPenalty: factor,
  /** Scarcity bounty for a model too few nodes serve: 1 when none. */
  bounty: factor,
  /** Reputation payout factor (verification/trust-score.ts): 1 when verification is off. */
  reputation: factor,
});
export type EarningsMultipliers = z.infer<typeof earningsMultipliersSchema>;

export const earningsPeriodSchema = z.strictObject({
  /** Start of the period (ms, inclusive); null: since the first request. */
  from: timestampMs.nullable(),
  /** End of the period (ms, exclusive): when the view was computed. */
  to: timestampMs,
  requests: count,
  promptTokens: count,
  completionTokens: count,
  /** What consumers paid for these requests. */
  debitMicro: count,
  /** Credited to the node (receipt checked out): what settlement pays. */
  earnedMicro: count,
  /** The node's share of requests whose receipt was missing, invalid or disagreed: held, not paid. */
  heldMicro: count,
  receipts: z.strictObject({ valid: count, missing: count, invalid: count, mismatch: count }),
  /** Debit-weighted multipliers of the period's requests; null without requests. */
  multipliers: earningsMultipliersSchema.nullable(),
});
export type EarningsPeriod = z.infer<typeof earningsPeriodSchema>;

export const earningsViewPayloadSchema = z.strictObject({
  node: address,
  gateway: address,
  /** When the view was computed (ms). */
  asOf: timestampMs,
  periods: z.strictObject({
    /** Since 00:00 UTC today. */
    today: earningsPeriodSchema,
    /** The last 7 × 24 hours. */
    week: earningsPeriodSchema,
    /** Since the latest posted settlement root (all time when none was posted). */
    epoch: earningsPeriodSchema,
    allTime: earningsPeriodSchema,
  }),
  /** The multipliers of the node's latest request: what applies now, roughly; null without requests. */
  latestMultipliers: earningsMultipliersSchema.nullable(),
  /** Settlement on chain; null when this gateway does not settle. */
  settlement: z
    .strictObject({
      chainId,
      contract: address,
      weiPerMicroCredit: decimal(30),
      /** Every credit ever earned, in wei: what the next root will state for this node. */
      earnedWei: decimal(78),
      /** The latest root this gateway posted (pending or in effect); null before the first. */
      latestRoot: z
        .strictObject({
          epoch: decimal(20),
          root: hex32,
          txHash,
          postedAt: timestampMs,
          /** This node's cumulative earnings in that root (wei); "0" when it is not in it. */
          cumulativeWei: decimal(78),
        })
        .nullable(),
      /** Earned but in no posted root yet (wei): it will be in the next epoch's. */
      unpostedWei: decimal(78),
    })
    .nullable(),
});
export type EarningsViewPayload = z.infer<typeof earningsViewPayloadSchema>;
export type EarningsViewPayloadInput = z.input<typeof earningsViewPayloadSchema>;

/** The route's answer, before the view is verified. */
export const earningsResponseSchema = z.strictObject({ view: z.unknown() });

/** A verified view, its payload parsed. */
export type VerifiedEarningsView = SignedObject<"EarningsView"> & { payload: EarningsViewPayload };

/** Reads a node's (unverified) signed earnings view; pass it to `verifyEarningsView`. */
export async function fetchEarningsView(client: GatewayTransport, node: string): Promise<unknown> {
  const body = await client.request({
    path: nodeEarningsPath(node.toLowerCase()),
    schema: earningsResponseSchema,
    what: "earnings view",
    maxBytes: 256 * 1024,
    hints: { NOT_FOUND: "This gateway does not serve earnings views: it runs an older gbt version." },
  });
  return body.view;
}

export interface VerifyEarningsViewOptions {
  /** The gateway's address (from `GET /v1/gateway/info`, or pinned): the only key allowed to sign. */
  gateway: Address;
  /** The node the view must be about and addressed to. */
  node: Address;
  chainId: number;
  now?: () => number;
  skewSeconds?: number;
}

/** Verifies a signed earnings view and parses its payload; a GbtError naming the failed check otherwise. */
export async function verifyEarningsView(
  value: unknown,
  options: VerifyEarningsViewOptions,
): Promise<VerifiedEarningsView> {
  const signed = await verifyObject(value, {
    kind: "EarningsView",
    chainId: options.chainId,
    allowedSigners: [options.gateway],
    audience: options.node,
    ...(options.now ? { now: options.now } : {}),
    ...(options.skewSeconds !== undefined ? { skewSeconds: options.skewSeconds } : {}),
  });
  const parsed = earningsViewPayloadSchema.safeParse(signed.payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GbtError(
      "INVALID_OBJECT",
      `The earnings view's payload is malformed: ${issue ? `${issue.path.join(".")}: ${issue.message}` : "unreadable"}.`,
      { hint: "The gateway runs another gbt version; upgrade gbt on both sides." },
    );
  }
  const payload = parsed.data;
  if (
    !isAddressEqual(payload.node, signed.message.node) ||
    !isAddressEqual(payload.gateway, signed.message.gateway)
  ) {
    throw new GbtError(
      "INVALID_OBJECT",
      "The earnings view's payload names another node or gateway than its signature.",
      {
        details: { node: payload.node, gateway: payload.gateway },
      },
    );
  }
  return { ...signed, payload };
}
