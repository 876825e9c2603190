/**
 * Trust tiers as the gateway ranks them. The names are the gateway API's (@gbt/protocol's
 * `trustTiers`, lowest first); a request asking for `verified` takes `verified` or `attested`.
 * `attested` needs confidential-compute evidence, which no node can show yet.
 */
import { type TrustTier, trustTiers } from "@gbt/protocol";
import { z } from "zod";

export const trustTierSchema = z.enum(trustTiers);

/** Rank of a tier: community 0, verified 1, attested 2. */
export function tierRank(tier: TrustTier): number {
  return trustTiers.indexOf(tier);
}

/** The tier a name stands for (as sent: lower-case), or undefined for an unknown name. */
export function tierNamed(name: string): TrustTier | undefined {
  return (trustTiers as readonly string[]).includes(name) ? (name as TrustTier) : undefined;
}
