/**
 * Setup mode of an unclaimed node (config `node.owners` empty): what `gbt serve` starts so that
 * the setup routes can show the claim code and hardware scan and take the owner's signed claim.
 * Claims are handled one at a time: of two racing claims exactly one wins and the other is told
 * the node is already claimed. Refused claims are rate limited (a 4-character code must not be
 * guessed by signing claims in a loop); the limit uses the injected clock.
 */
import { HttpError } from "@gbt/protocol";
import type { GbtPaths } from "@gbt/store";
import type { Logger } from "pino";
import { type Address, getAddress } from "viem";
import { loadConfig } from "../config.js";
import { applyClaim, verifyNodeClaim } from "./claim.js";
import { ensureClaimCode } from "./claim-code.js";

/** Refused claims accepted per window before the node answers 429 until the window ends. */
export const CLAIM_FAILURE_LIMIT = 10;
export const CLAIM_FAILURE_WINDOW_MS = 60_000;

export interface SetupState {
  claimed: boolean;
  /** The code to claim with; null once claimed. */
  code: string | null;
  node: Address;
  chainId: number;
  owners: Address[];
}

/** What `/setup/info` answers: the state and the hardware scan summary. */
export interface SetupInfo extends SetupState {
  hardware: unknown;
}

export interface SetupControllerOptions {
  paths: Pick<GbtPaths, "configFile" | "configDir">;
  nodeAddress: Address;
  chainId: number;
  /** The hardware scan summary to show (called once, when first needed). */
  hardware: () => Promise<unknown>;
  logger: Logger;
  now?: () => number;
  skewSeconds?: number;
  /** Serve the setup routes to private-LAN peers too (`--setup-host`), not only loopback. */
  allowLan?: boolean;
}

export interface SetupController {
  /** Whether private-LAN peers may use the setup routes. */
  readonly allowLan: boolean;
  state(): Promise<SetupState>;
  info(): Promise<SetupInfo>;
  /** Verifies and applies a signed NodeClaim; the owner it recorded. */
  claim(body: unknown): Promise<{ owner: Address }>;
  /** Called once per successful claim, after the config is written. */
  onClaimed(listener: (owner: Address) => void): void;
}

export function createSetupController(options: SetupControllerOptions): SetupController {
  const { paths, logger } = options;
  const now = options.now ?? Date.now;
  const node = getAddress(options.nodeAddress);
  const listeners: Array<(owner: Address) => void> = [];
  let hardware: Promise<unknown> | undefined;
  /** The claim being handled now: the next one waits for it (one at a time). */
  let queue: Promise<unknown> = Promise.resolve();
  let failures: number[] = [];

  const codeOptions = {
    now,
    onReplaced: (reason: string) =>
      logger.warn({ reason }, "claim.json was unusable: a new claim code was made"),
  };

  async function state(): Promise<SetupState> {
    const config = await loadConfig(paths.configFile);
    const owners = config.node.owners as Address[];
    const claimed = owners.length > 0;
    return {
      claimed,
      code: claimed ? null : await ensureClaimCode(paths, codeOptions),
      node,
      chainId: options.chainId,
      owners,
    };
  }

  function rateLimited(): HttpError | null {
    const since = now() - CLAIM_FAILURE_WINDOW_MS;
    failures = failures.filter((at) => at > since);
    if (failures.length < CLAIM_FAILURE_LIMIT) return null;
    const retryAfter = Math.max(1, Math.ceil(((failures[0] ?? now()) - since) / 1000));
    return new HttpError(
      "rate_limited",
      `Too many refused claims; try again in ${retryAfter} s.`,
      null,
      { "retry-after": String(retryAfter) },
      "claim_rate_limited",
    );
  }

  async function claimNow(body: unknown): Promise<{ owner: Address }> {
    const limited = rateLimited();
    if (limited) throw limited;
    const current = await state();
    if (current.claimed) {
      throw new HttpError(
        "conflict",
        `This node is already claimed (owners: ${current.owners.join(", ")}). Nothing changed; to add an owner, sign jobs as an existing owner or run \`gbt setup --owner\` on the node.`,
        null,
        {},
        "node_already_claimed",
      );
    }
    let owner: Address;
    try {
      owner = await verifyNodeClaim(body, {
        node,
        code: current.code ?? "",
        chainId: options.chainId,
        now,
        ...(options.skewSeconds === undefined ? {} : { skewSeconds: options.skewSeconds }),
      });
    } catch (error) {
      failures.push(now());
      logger.warn({ reason: (error as { wireCode?: string }).wireCode ?? String(error) }, "claim refused");
      throw error;
    }
    await applyClaim(paths, owner, { now });
    logger.info({ owner, node }, "node claimed: setup mode ends");
    for (const listener of listeners) {
      try {
        listener(owner);
      } catch (error) {
        logger.error({ err: error }, "a claim listener failed");
      }
    }
    return { owner };
  }

  return {
    allowLan: options.allowLan === true,
    state,
    async info() {
      hardware ??= options.hardware().catch((error: unknown) => ({
        error: `The hardware scan failed: ${error instanceof Error ? error.message : String(error)}`,
      }));
      const [current, scan] = await Promise.all([state(), hardware]);
      return { ...current, hardware: scan };
    },
    claim(body) {
      const result = queue.then(() => claimNow(body));
      queue = result.catch(() => undefined);
      return result;
    },
    onClaimed(listener) {
      listeners.push(listener);
    },
  };
}
