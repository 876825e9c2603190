/**
 * Claiming an unclaimed node: a NodeClaim signed by the owner key, addressed to this node, for
 * this chain, bound to the code the node shows now and short-lived. The gate runs cheapest first
 * (shape, domain, chain, window, node, then the signature, then the code) and names every failure
 * with its own wire code, each message saying what to do next. Applying a claim records the owner
 * in config.json (atomically) and replaces the code, so the same signed claim never works twice.
 */
import {
  GbtError,
  HttpError,
  type HttpErrorCode,
  isGbtError,
  recoverSignerNative,
  type SignedObject,
  verifyObject,
} from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import { type Address, getAddress, isAddressEqual } from "viem";
import { loadConfig, saveConfig } from "../config.js";
import { rotateClaimCode } from "./claim-code.js";

/** The longest window a claim may be signed for: a claim is used at once, not kept. */
export const MAX_CLAIM_LIFETIME_SECONDS = 3600;
/** What `gbt owner claim` signs for. */
export const DEFAULT_CLAIM_TTL_SECONDS = 600;

export interface VerifyNodeClaimOptions {
  /** This node's address: the claim's audience. */
  node: Address;
  /** The code this node shows now. */
  code: string;
  chainId: number;
  now?: () => number;
  skewSeconds?: number;
  /** Longest accepted expiresAt − issuedAt (default MAX_CLAIM_LIFETIME_SECONDS). */
  maxLifetimeSeconds?: number;
}

/** A refused claim: its wire code names the check, the message says what to do. */
function refused(code: HttpErrorCode, wireCode: string, message: string, param: string | null = null) {
  return new HttpError(code, message, param, {}, wireCode);
}

/** What each of verifyObject's failures becomes for a claim. */
const fromVerify: Partial<Record<string, [HttpErrorCode, string, string]>> = {
  INVALID_OBJECT: [
    "invalid_object",
    "claim_invalid",
    "Paste the whole JSON `gbt owner claim --print` wrote.",
  ],
  WRONG_DOMAIN: ["wrong_domain", "claim_wrong_domain", "Sign it with gbt (`gbt owner claim`)."],
  WRONG_CHAIN: ["wrong_chain", "claim_wrong_chain", "Sign it again with this node's chain id (--chain-id)."],
  EXPIRED: ["expired", "claim_expired", "Sign a fresh claim with `gbt owner claim`."],
  NOT_YET_VALID: ["not_yet_valid", "claim_not_yet_valid", "Check the clocks of both machines."],
  SIGNATURE_INVALID: [
    "signature_invalid",
    "claim_signature_invalid",
    "It was altered after signing: sign it again with `gbt owner claim`.",
  ],
};

/**
 * Checks a signed NodeClaim received from anywhere; returns the owner it proves. Throws an
 * HttpError whose wire code says which check failed (`claim_wrong_node`, `claim_wrong_code`,
 * `claim_expired`, `claim_signature_invalid`…).
 */
export async function verifyNodeClaim(signed: unknown, options: VerifyNodeClaimOptions): Promise<Address> {
  const now = options.now ?? Date.now;
  let claim: SignedObject<"NodeClaim">;
  try {
    claim = await verifyObject(signed, {
      kind: "NodeClaim",
      chainId: options.chainId,
      audience: options.node,
      recoverSigner: recoverSignerNative,
      now,
      ...(options.skewSeconds === undefined ? {} : { skewSeconds: options.skewSeconds }),
    });
  } catch (error) {
    if (!isGbtError(error)) throw error;
    if (error.code === "WRONG_AUDIENCE") {
      const actual = (error.details?.actual as string | undefined) ?? "another node";
      throw refused(
        "wrong_node",
        "claim_wrong_node",
        `This claim is for node ${actual}, not this node (${getAddress(options.node)}). Sign one for this node: gbt owner claim CODE --node URL, or --node-address ${getAddress(options.node)}.`,
        "node",
      );
    }
    const mapped = fromVerify[error.code];
    if (!mapped) throw error;
    throw refused(mapped[0], mapped[1], `${error.message} ${mapped[2]}`);
  }
  const { message } = claim;
  const maxLifetime = options.maxLifetimeSeconds ?? MAX_CLAIM_LIFETIME_SECONDS;
  if (message.expiresAt - message.issuedAt > maxLifetime) {
    throw refused(
      "invalid_value",
      "claim_too_long_lived",
      `This claim is valid for ${message.expiresAt - message.issuedAt} s; a claim may be valid for at most ${maxLifetime} s. Sign a fresh one with \`gbt owner claim\`.`,
      "expiresAt",
    );
  }
  // Checked under a valid signature: a forged claim learns nothing about the current code.
  if (message.code !== options.code) {
    throw refused(
      "invalid_value",
      "claim_wrong_code",
      `This claim is for code ${message.code}, which is not the code this node shows now (an old code, or a typo). Sign a claim with the code on the node's screen.`,
      "code",
    );
  }
  return getAddress(message.owner);
}

/**
 * Records `owner` in the node's config (node.owners, atomic write) and gives the node a new code.
 * Returns the owners after the claim.
 */
export async function applyClaim(
  paths: Pick<GbtPaths, "configFile" | "configDir">,
  owner: Address,
  options: { now?: () => number } = {},
): Promise<Address[]> {
  const config = await loadConfig(paths.configFile);
  const owners = config.node.owners.some((known) => isAddressEqual(known, owner))
    ? config.node.owners
    : [...config.node.owners, getAddress(owner)];
  if (owners.length > 32) {
    throw new GbtError("INVALID_INPUT", "This node already has 32 owners, the most a config holds.", {
      hint: "Remove an owner from config.json before adding another.",
    });
  }
  await saveConfig(paths.configFile, { ...config, node: { ...config.node, owners } });
  await rotateClaimCode(paths, options);
  return owners as Address[];
}
