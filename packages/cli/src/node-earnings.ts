/**
 * What this node earned, for `gbt node earnings` and the Operator: the gateway's signed earnings
 * view (`GET /v1/nodes/:node/earnings`), verified before anything in it is shown (signed by the
 * gateway key: the one the node config pins, else the one `GET /v1/gateway/info` names; addressed
 * to this node; unexpired), and, where the gateway settles on a chain this home knows (chain.json),
 * the chain's side as `gbt payout status` reads it: paid so far, earned in the root in effect,
 * claimable now. Reading the chain needs no key: the node's address signs nothing here.
 */
import { gatewayPin, readConfigIfPresent, resolvePaths } from "@gbt/node";
import {
  createGatewayClient,
  type EarningsPeriod,
  type EarningsViewPayload,
  fetchEarningsView,
  GbtError,
  isGbtError,
  verifyEarningsView,
} from "@gbt/protocol";
import { type Address, getAddress, isAddress, isAddressEqual } from "viem";
import { toAccount } from "viem/accounts";
import { formatGbt } from "./chain-amount.js";
import { openChainSession } from "./chain-session.js";
import { renderTable } from "./format.js";
import { type PayoutStatusResult, readPayoutStatus } from "./payout-status.js";

export interface ReadNodeEarningsOptions {
  /** The gateway's base URL (default: gateway.url of the node config). */
  gatewayUrl?: string | undefined;
  /** The node (default: node.address of the node config). */
  node?: string | undefined;
  /** The chain RPC (default: chain.json's). */
  rpcUrl?: string | undefined;
  /** Skip the chain part. */
  chain?: boolean;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  fetch?: typeof fetch;
}

/** The chain's side, as `gbt payout status` reads it (wei, decimal strings). */
export type NodeEarningsChain = Pick<
  PayoutStatusResult,
  "paid" | "earned" | "claimable" | "epoch" | "pending"
> & {
  note?: string;
};

export interface NodeEarningsResult {
  node: Address;
  gatewayUrl: string;
  /** The gateway key that signed the view (checked). */
  gateway: Address;
  /** Whether that key was pinned by the node config (else taken from the gateway's info). */
  pinned: boolean;
  signed: { issuedAt: string; expiresAt: string; viewHash: string; signature: string };
  earnings: EarningsViewPayload;
  /** Null when the gateway does not settle on chain, or the chain could not be read (see `chainNote`). */
  chain: NodeEarningsChain | null;
  chainNote?: string;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** An account that only has an address: enough to read the chain, and it refuses to sign. */
function watchOnly(address: Address) {
  const refuse = async (): Promise<never> => {
    throw new GbtError("INTERNAL", "gbt node earnings only reads the chain; it signs nothing.");
  };
  return toAccount({ address, signMessage: refuse, signTransaction: refuse, signTypedData: refuse });
}

/** Reads and verifies this node's earnings view, then the chain's side when there is one. */
export async function readNodeEarnings(options: ReadNodeEarningsOptions = {}): Promise<NodeEarningsResult> {
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const config = await readConfigIfPresent(resolvePaths(env).configFile);
  const gatewayUrl = options.gatewayUrl ?? config?.gateway?.url;
  if (gatewayUrl === undefined) {
    throw new GbtError("MISSING_INPUT", "This node has no gateway configured.", {
      hint: "Pass --gateway URL, or link the node with `gbt serve --gateway URL`.",
    });
  }
  const rawNode = options.node ?? config?.node.address;
  if (rawNode === undefined) {
    throw new GbtError("NOT_SET_UP", "No node address: this home has no node config.", {
      hint: "Run `gbt setup` first (or set GBT_HOME to the node's directory), or pass --node 0x….",
    });
  }
  if (!isAddress(rawNode, { strict: false })) {
    throw new GbtError(
      "INVALID_ADDRESS",
      `--node must be a 0x-prefixed 20-byte address, got "${rawNode.slice(0, 50)}".`,
    );
  }
  const node = getAddress(rawNode);
  const client = createGatewayClient({
    url: gatewayUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    hints: {
      unreachable: "Check the gateway URL (--gateway, or gateway.url in the node config) and that it runs.",
      shape: "Check that --gateway points at a gbt gateway.",
    },
  });
  const info = await client.getInfo();
  // The address given in the config, else the one the node's outbound link pinned on first use.
  const pinned =
    config?.link?.gatewayAddress ??
    (await gatewayPin(resolvePaths(env), gatewayUrl)
      .load()
      .catch(() => null)) ??
    undefined;
  // A view is the gateway's word: only its key may sign it; a pinned key beats what the gateway says.
  const gateway = pinned ?? info.address;
  const view = await verifyEarningsView(await fetchEarningsView(client, node), {
    gateway,
    node,
    chainId: info.chainId,
    now,
  }).catch((error: unknown) => {
    if (isGbtError(error, "UNKNOWN_SIGNER")) {
      throw new GbtError(
        "UNKNOWN_SIGNER",
        `The earnings view from ${gatewayUrl} is not signed by ${pinned ? "the gateway key this node pins" : "the gateway's own key"} (${gateway}); nothing of it is shown.`,
        {
          details: { gatewayUrl, expected: gateway, pinned: pinned !== undefined },
          hint: "Something between you and the gateway answers in its name: check the gateway URL (use https).",
          cause: error,
        },
      );
    }
    if (isGbtError(error)) {
      throw new GbtError(
        error.code,
        `The earnings view from ${gatewayUrl} does not check out: ${error.message}`,
        {
          ...(error.details ? { details: error.details } : {}),
          hint: error.hint ?? "Check the gateway URL, and that this machine's clock is right.",
          cause: error,
        },
      );
    }
    throw error;
  });
  const result: NodeEarningsResult = {
    node,
    gatewayUrl,
    gateway,
    pinned: pinned !== undefined,
    signed: {
      issuedAt: iso(view.message.issuedAt),
      expiresAt: iso(view.message.expiresAt),
      viewHash: view.message.viewHash,
      signature: view.signature,
    },
    earnings: view.payload,
    chain: null,
  };
  const settlement = view.payload.settlement;
  if (options.chain === false) return { ...result, chainNote: "Not read (--no-chain)." };
  if (!settlement) return { ...result, chainNote: "This gateway does not settle on chain." };
  try {
    const session = await openChainSession({ rpcUrl: options.rpcUrl, env, account: watchOnly(node) });
    if (!isAddressEqual(session.deployment.settlement, settlement.contract)) {
      return {
        ...result,
        chainNote: `The gateway settles to ${settlement.contract}, not this home's chain (${session.deployment.settlement}): run \`gbt payout status\` against that chain.`,
      };
    }
    const { status } = await readPayoutStatus(session, gatewayUrl);
    return {
      ...result,
      chain: {
        paid: status.paid,
        earned: status.earned,
        claimable: status.claimable,
        epoch: status.epoch,
        pending: status.pending,
        ...(status.note ? { note: status.note } : {}),
      },
    };
  } catch (error) {
    // The gateway's view stands on its own: a chain that cannot be read is said, not fatal.
    if (!isGbtError(error)) throw error;
    return { ...result, chainNote: `${error.message}${error.hint ? ` ${error.hint}` : ""}` };
  }
}

/** Micro-credits as credits, six decimals. */
export function formatCredits(micro: number): string {
  const whole = Math.floor(micro / 1_000_000);
  return `${whole}.${String(micro % 1_000_000).padStart(6, "0")}`;
}

const pct = (factor: number) => `${Math.round(factor * 100)}%`;

function multipliersText(period: EarningsPeriod): string {
  const m = period.multipliers;
  if (!m) return "—";
  return `share ${pct(m.providerShare)}, ramp-up ${pct(m.rampFactor)}, switch ${pct(m.switchPenalty)}, bounty ×${m.bounty}, reputation ${pct(m.reputation)}`;
}

/** The human rendering: a table of the periods, then what is settled and claimable. */
export function renderNodeEarnings(result: NodeEarningsResult): string {
  const { periods, settlement } = result.earnings;
  const rows = (
    [
      ["Today (UTC)", periods.today],
      ["Last 7 days", periods.week],
      ["This epoch", periods.epoch],
      ["All time", periods.allTime],
    ] as const
  ).map(([label, p]) => [
    label,
    String(p.requests),
    String(p.promptTokens),
    String(p.completionTokens),
    formatCredits(p.earnedMicro),
    p.heldMicro > 0 ? formatCredits(p.heldMicro) : "0",
  ]);
  const table = renderTable(
    ["Period", "Requests", "Prompt tok", "Completion tok", "Earned (credits)", "Held"],
    rows,
    {
      align: ["left", "right", "right", "right", "right", "right"],
      indent: "  ",
    },
  );
  const lines = [
    `Node     ${result.node}`,
    `Gateway  ${result.gatewayUrl} (view signed by ${result.gateway}${result.pinned ? ", pinned" : ""}, as of ${new Date(result.earnings.asOf).toISOString()})`,
    "",
    table,
    "",
    `  Multipliers this week: ${multipliersText(periods.week)}`,
    ...(result.earnings.latestMultipliers
      ? [
          `  Latest request:        ${multipliersText({ ...periods.allTime, multipliers: result.earnings.latestMultipliers })}`,
        ]
      : []),
  ];
  if (periods.allTime.heldMicro > 0) {
    lines.push(
      "  Held: the node's share of requests whose usage receipt was missing or did not match; not paid.",
    );
  }
  lines.push("");
  if (settlement) {
    const root = settlement.latestRoot;
    lines.push(
      `  In the latest posted root:  ${root ? `${formatGbt(BigInt(root.cumulativeWei))} (epoch ${root.epoch})` : "none posted yet"}`,
      `  Not in a root yet:          ${formatGbt(BigInt(settlement.unpostedWei))} (in the next epoch's)`,
    );
  }
  if (result.chain) {
    const chain = result.chain;
    lines.push(
      `  Settled (root in effect):   ${chain.earned === null ? `unknown${chain.note ? ` (${chain.note})` : ""}` : formatGbt(BigInt(chain.earned))} (epoch ${chain.epoch})`,
      `  Paid on chain:              ${formatGbt(BigInt(chain.paid))}`,
      `  Claimable now:              ${formatGbt(BigInt(chain.claimable))}${BigInt(chain.claimable) > 0n ? " (gbt payout claim)" : ""}`,
      ...(chain.pending
        ? [
            `  Pending root:               epoch ${chain.pending.epoch}, takes effect ${chain.pending.effectiveAt}`,
          ]
        : []),
    );
  } else if (result.chainNote) {
    lines.push(`  Chain: ${result.chainNote}`);
  }
  return lines.join("\n").trimEnd();
}
