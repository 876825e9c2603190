/**
 * Trust tiers as the gateway ranks them. The names are the gateway API's (@gbt/protocol's
 * `trustTiers`, lowest first); a request asking for `verified` takes `verified` or `attested`.
 * `attested` needs confidential-compute evidence, which no node can show yet.
 *
 * Some backends cap a node at `community` whatever its record: a cloud-account node
 * (`backend.kind: "cloud"`, an OpenAI-compatible API on someone's cloud account) answers canaries
 * like any other, but nothing it can show says which hardware or weights serve it. It is routed
 * and earns like any other node; it only never meets a `verified` minimum.
 */
import { type TrustTier, trustTiers } from "@gbt/protocol";
import { z } from "zod";

export const trustTierSchema = z.enum(trustTiers);

/** The registration's `backend.kind` of a node served from a cloud account. */
export const CLOUD_BACKEND_KIND = "cloud";

/** Rank of a tier: community 0, verified 1, attested 2. */
export function tierRank(tier: TrustTier): number {
  return trustTiers.indexOf(tier);
}

/** The tier a name stands for (as sent: lower-case), or undefined for an unknown name. */
export function tierNamed(name: string): TrustTier | undefined {
  return (trustTiers as readonly string[]).includes(name) ? (name as TrustTier) : undefined;
}

/**
 * Why a node with this backend can never be `verified` (the sentence shown among its tier
 * reasons), or undefined when its backend allows it.
 */
export function unverifiableBackendReason(backendKind: string | null | undefined): string | undefined {
  if (backendKind === CLOUD_BACKEND_KIND) {
    return "a cloud-account node (backend cloud) cannot prove which hardware serves it: never verified";
  }
  return undefined;
}
