/**
 * Turns what viem throws into GbtErrors a user can act on: a contract's custom error becomes its
 * own code (insufficient balance, unbonding not finished, nothing to claim, invalid proof…), a
 * dead RPC becomes CHAIN_UNREACHABLE, and anything unknown stays a bug.
 */
import { GbtError } from "@gbt/protocol";
import {
  BaseError,
  ChainMismatchError,
  ContractFunctionRevertedError,
  formatUnits,
  HttpRequestError,
  InsufficientFundsError,
} from "viem";

const gbt = (value: unknown) => `${formatUnits(BigInt(value as bigint), 18)} GBT`;
const isoSeconds = (value: unknown) => new Date(Number(value) * 1000).toISOString();

function fromRevert(revert: ContractFunctionRevertedError, action: string): GbtError {
  const name = revert.data?.errorName;
  const args = (revert.data?.args ?? []) as readonly unknown[];
  const details = { action, contractError: name, args: args.map((arg) => String(arg)) };
  switch (name) {
    case "InsufficientStake":
      return new GbtError(
        "INSUFFICIENT_FUNDS",
        `Only ${gbt(args[0])} is staked; cannot ${action} ${gbt(args[1])}.`,
        {
          details,
          hint: "Check `gbt stake status`.",
        },
      );
    case "ERC20InsufficientBalance":
      return new GbtError(
        "INSUFFICIENT_FUNDS",
        `The account holds ${gbt(args[1])}; ${action} needs ${gbt(args[2])}.`,
        {
          details,
          hint: "Get GBT into the account first (on a dev chain, `gbt chain dev` funds the node key).",
        },
      );
    case "UnbondingNotFinished": {
      const releaseAt = isoSeconds(args[0]);
      return new GbtError("UNBONDING_NOT_FINISHED", `The unbonding stake is locked until ${releaseAt}.`, {
        details: { ...details, releaseAt },
        hint: "Run `gbt stake withdraw` again after that time.",
      });
    }
    case "NothingUnbonding":
      return new GbtError("NOT_FOUND", "There is no unbonding stake to withdraw.", {
        details,
        hint: "Start with `gbt stake unbond <amount>`, then withdraw after the delay.",
      });
    case "NothingToClaim":
      return new GbtError(
        "NOTHING_TO_CLAIM",
        `Nothing to claim: ${gbt(args[1])} of ${gbt(args[0])} earned is already paid.`,
        {
          details,
          hint: "Earnings settle once per epoch; claim again after the next one.",
        },
      );
    case "NoRoot":
      return new GbtError("NOTHING_TO_CLAIM", "No settlement epoch has been posted yet.", {
        details,
        hint: "Wait for the gateway's first epoch.",
      });
    case "RootNotYetEffective": {
      const effectiveAt = isoSeconds(args[1]);
      return new GbtError(
        "NOTHING_TO_CLAIM",
        `The proof is of settlement epoch ${String(args[0])}, whose root takes effect at ${effectiveAt}.`,
        {
          details: { ...details, effectiveAt },
          hint: "Claim again after that time; until then claims pay up to the epoch in effect.",
        },
      );
    }
    case "RootPending": {
      const effectiveAt = isoSeconds(args[1]);
      return new GbtError(
        "CONFLICT",
        `Settlement epoch ${String(args[0])} is pending until ${effectiveAt}; the next root waits for it.`,
        { details: { ...details, effectiveAt }, hint: "Post the next root after that time." },
      );
    }
    case "NoPendingRoot":
      return new GbtError("NOT_FOUND", "No settlement root is pending (or it has already taken effect).", {
        details,
        hint: "A root in effect is final; only a pending one can be cancelled or replaced.",
      });
    case "LiabilityAboveBound":
      return new GbtError(
        "POLICY_DENIED",
        `The root adds ${gbt(args[0])} of new liability; Settlement allows ${gbt(args[1])} per epoch.`,
        {
          details,
          hint: "Settle epochs more often, or have governance raise the bound (setMaxEpochLiability).",
        },
      );
    case "InvalidProof":
      return new GbtError("INVALID_PROOF", "The Settlement contract rejected the Merkle proof.", {
        details,
        hint: "Fetch a fresh proof: a newer epoch may have been posted since.",
      });
    case "SlashPending":
      return new GbtError(
        "CONFLICT",
        "A slash against this node is pending; stake cannot leave until it is resolved.",
        {
          details,
        },
      );
    case "AccessControlUnauthorizedAccount":
      return new GbtError("UNAUTHORIZED", `Account ${String(args[0])} lacks the role this action needs.`, {
        details,
      });
    case "AlreadyPublished":
      return new GbtError("ALREADY_EXISTS", "This manifest hash is already committed on chain.", { details });
    case "Underfunded":
      return new GbtError(
        "INSUFFICIENT_FUNDS",
        `The Settlement contract is funded with ${gbt(args[0])}; this needs ${gbt(args[1])}.`,
        {
          details,
          hint: "Fund the Settlement contract from the rewards pool.",
        },
      );
    default:
      return new GbtError(
        "TRANSACTION_REVERTED",
        `The chain refused to ${action}: ${name ?? revert.shortMessage}.`,
        {
          details,
          cause: revert,
        },
      );
  }
}

/** Maps an error from a chain call made to `action` (e.g. "stake") to a GbtError; rethrows GbtErrors. */
export function toChainError(error: unknown, action: string, rpcUrl?: string): GbtError {
  if (error instanceof GbtError) return error;
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) return fromRevert(revert, action);
    if (error.walk((e) => e instanceof InsufficientFundsError)) {
      return new GbtError("INSUFFICIENT_FUNDS", `The account has too little ETH to pay gas to ${action}.`, {
        details: { action },
        hint: "Send some ETH to the account (on a dev chain, `gbt chain dev` funds the node key).",
        cause: error,
      });
    }
    if (error.walk((e) => e instanceof ChainMismatchError)) {
      return new GbtError("WRONG_CHAIN", `The RPC serves another chain than the one configured.`, {
        details: { action },
        hint: "Point the chain config at the right RPC, or run `gbt chain dev` again.",
        cause: error,
      });
    }
    if (error.walk((e) => e instanceof HttpRequestError)) {
      return new GbtError(
        "CHAIN_UNREACHABLE",
        `Cannot reach the chain RPC${rpcUrl ? ` at ${rpcUrl}` : ""}.`,
        {
          details: { action, ...(rpcUrl ? { rpcUrl } : {}) },
          hint: "Start it (`gbt chain dev`), or fix the RPC URL in the chain config.",
          cause: error,
        },
      );
    }
  }
  return new GbtError("INTERNAL", error instanceof Error ? error.message : String(error), { cause: error });
}
