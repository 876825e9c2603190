/**
 * The owner's side of a claim (`gbt owner claim`): sign a NodeClaim for a node's address, code
 * and chain, and (unless only printing it) hand it to the node's setup routes after checking
 * that the node shows the code the owner typed. Every failure is a GbtError with a next step.
 */
import { type ErrorCode, GbtError, type SignedObject, schemas, signObject } from "@gbt/protocol";
import type { Address, LocalAccount } from "viem";
import { getAddress } from "viem";
import { z } from "zod";
import { DEFAULT_CLAIM_TTL_SECONDS } from "./claim.js";
import { normalizeClaimCode } from "./claim-code.js";
import { setupPaths } from "./setup-routes.js";

export const DEFAULT_NODE_URL = "http://127.0.0.1:8787";

export interface SignNodeClaimParameters {
  node: Address;
  code: string;
  chainId: number;
  now?: () => number;
  ttlSeconds?: number;
}

/** A claim code as typed, canonical; INVALID_INPUT when it cannot be one. */
export function parseClaimCode(typed: string): string {
  const code = normalizeClaimCode(typed);
  if (!code) {
    throw new GbtError("INVALID_INPUT", `"${typed.slice(0, 32)}" is not a claim code.`, {
      hint: "Type the code the node shows, like GBT-N7K4 (gbt serve prints it; so does gbt status).",
    });
  }
  return code;
}

/** Signs a NodeClaim with the owner key (valid from now for `ttlSeconds`, default 10 min). */
export async function signNodeClaim(
  account: LocalAccount,
  parameters: SignNodeClaimParameters,
): Promise<SignedObject<"NodeClaim">> {
  const issuedAt = Math.floor((parameters.now ?? Date.now)() / 1000);
  return signObject(account, {
    kind: "NodeClaim",
    chainId: parameters.chainId,
    message: {
      node: getAddress(parameters.node),
      owner: account.address,
      code: parseClaimCode(parameters.code),
      issuedAt,
      expiresAt: issuedAt + (parameters.ttlSeconds ?? DEFAULT_CLAIM_TTL_SECONDS),
    },
  });
}

const setupInfoSchema = z.object({
  claimed: z.boolean(),
  code: z.string().max(16).nullable(),
  codeHidden: z.boolean().optional(),
  node: schemas.address,
  chainId: schemas.chainId,
  owners: z.array(schemas.address).max(64),
});

const claimAnswerSchema = z.object({
  owner: schemas.address,
  node: schemas.address,
  owners: z.array(schemas.address).max(64),
});

const errorAnswerSchema = z.object({
  error: z.object({ message: z.string().max(2000), code: z.string().max(64).nullable().optional() }),
});

export interface ClaimNodeParameters {
  account: LocalAccount;
  /** The code as the owner typed it. */
  code: string;
  /** The node's URL (default http://127.0.0.1:8787). */
  nodeUrl?: string;
  fetch?: typeof fetch;
  now?: () => number;
  ttlSeconds?: number;
  timeoutMs?: number;
}

export interface ClaimNodeResult {
  owner: Address;
  node: Address;
  owners: Address[];
  chainId: number;
  nodeUrl: string;
}

/** What a node's refusal becomes for the CLI (its exit code class). */
const refusalCodes: Record<string, ErrorCode> = {
  claim_wrong_node: "INVALID_INPUT",
  claim_wrong_code: "INVALID_INPUT",
  claim_expired: "EXPIRED",
  claim_not_yet_valid: "NOT_YET_VALID",
  claim_signature_invalid: "SIGNATURE_INVALID",
  claim_wrong_chain: "WRONG_CHAIN",
  node_already_claimed: "CONFLICT",
  claim_rate_limited: "BUSY",
  setup_loopback_only: "POLICY_DENIED",
  setup_bad_host: "POLICY_DENIED",
  setup_cross_origin: "POLICY_DENIED",
};

/** Claims the node at `nodeUrl` for the owner key: info, code check, sign, submit. */
export async function claimNode(parameters: ClaimNodeParameters): Promise<ClaimNodeResult> {
  const code = parseClaimCode(parameters.code);
  const nodeUrl = (parameters.nodeUrl ?? DEFAULT_NODE_URL).replace(/\/+$/, "");
  const doFetch = parameters.fetch ?? fetch;
  const timeoutMs = parameters.timeoutMs ?? 15_000;

  async function call(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    let response: Response;
    try {
      response = await doFetch(`${nodeUrl}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new GbtError("NODE_UNREACHABLE", `Cannot reach the node at ${nodeUrl}.`, {
        details: { url: nodeUrl },
        hint: "Is `gbt serve` running there? Pass its URL with --node (default http://127.0.0.1:8787).",
        cause,
      });
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body };
  }

  function refusal(status: number, body: unknown, what: string): GbtError {
    const parsed = errorAnswerSchema.safeParse(body);
    const wire = parsed.success ? (parsed.data.error.code ?? undefined) : undefined;
    if (status === 404 || status === 401) {
      return new GbtError(
        "NOT_FOUND",
        `The node at ${nodeUrl} is not in setup mode (HTTP ${status} on ${what}).`,
        {
          details: { url: nodeUrl, status },
          hint: "A node shows its setup routes only while it is unclaimed; `gbt status` on it says which it is.",
        },
      );
    }
    const message = parsed.success ? parsed.data.error.message : `HTTP ${status} on ${what}.`;
    const code: ErrorCode =
      (wire === undefined ? undefined : refusalCodes[wire]) ??
      (status >= 500 ? "NODE_UNREACHABLE" : "INVALID_INPUT");
    return new GbtError(code, `The node refused the claim: ${message}`, {
      details: { url: nodeUrl, status, ...(wire ? { code: wire } : {}) },
    });
  }

  const info = await call(setupPaths.info, { headers: { accept: "application/json" } });
  if (info.status !== 200) throw refusal(info.status, info.body, setupPaths.info);
  const parsedInfo = setupInfoSchema.safeParse(info.body);
  if (!parsedInfo.success) {
    throw new GbtError(
      "NODE_UNREACHABLE",
      `The node at ${nodeUrl} answered ${setupPaths.info} with something else than setup info.`,
      {
        details: { url: nodeUrl },
      },
    );
  }
  const state = parsedInfo.data;
  if (state.claimed) {
    throw new GbtError(
      "CONFLICT",
      `The node ${state.node} is already claimed (owners: ${state.owners.join(", ")}).`,
      {
        details: { node: state.node, owners: state.owners },
        hint: "Nothing to do if one of them is you; otherwise ask its owner.",
      },
    );
  }
  if (state.code !== null && state.code !== code) {
    throw new GbtError(
      "INVALID_INPUT",
      `The node at ${nodeUrl} shows another claim code than ${code}: this is not the node you meant, or the code changed.`,
      {
        details: { url: nodeUrl, node: state.node },
        hint: "Check the code on the node's screen (gbt serve's output, or http://127.0.0.1:8787/setup on the node) and the --node URL.",
      },
    );
  }
  const signed = await signNodeClaim(parameters.account, {
    node: state.node,
    code,
    chainId: state.chainId,
    ...(parameters.now ? { now: parameters.now } : {}),
    ...(parameters.ttlSeconds ? { ttlSeconds: parameters.ttlSeconds } : {}),
  });
  const answer = await call(setupPaths.claim, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(signed),
  });
  if (answer.status !== 200) throw refusal(answer.status, answer.body, setupPaths.claim);
  const claimed = claimAnswerSchema.safeParse(answer.body);
  if (!claimed.success) {
    throw new GbtError(
      "NODE_UNREACHABLE",
      `The node at ${nodeUrl} accepted the claim but its answer is malformed.`,
      {
        hint: "Run `gbt status` on the node to see its owners.",
      },
    );
  }
  return {
    owner: claimed.data.owner as Address,
    node: claimed.data.node as Address,
    owners: claimed.data.owners as Address[],
    chainId: state.chainId,
    nodeUrl,
  };
}
