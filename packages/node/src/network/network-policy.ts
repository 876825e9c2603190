/**
 * How much of this node pooled traffic (requests the gateway routes from its open pool) may use
 * right now. In network mode: nothing without an owner, nothing outside the schedule, and inside
 * it at most `maxShare` of the capacity (at least one slot) and at most `maxConcurrent` at once;
 * local keys keep the rest. In modes local and managed the node may still be linked to its
 * owner's own gateway: that traffic is the owner's, so it gets the whole capacity, always.
 * A timer (unref'd: it never keeps the process alive) calls `onChange` at each schedule boundary,
 * so the caller can tell the gateway at once (a heartbeat declaring the new capacity).
 */
import { GbtError } from "@gbt/protocol";
import type { NetworkConfig, NodeMode } from "../config.js";
import {
  formatLocalTime,
  isOpen,
  nextChange,
  parseSchedule,
  resolveTimeZone,
  type Schedule,
} from "./schedule.js";

/** The timer functions the policy uses; the globals by default, a fake clock's in tests. */
export interface PolicyTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface NetworkPolicyOptions {
  /** Requests the node serves at once (all traffic). */
  capacity: number;
  config: NetworkConfig | undefined;
  mode: NodeMode;
  /** Whether the node has an owner (`node.owners` is not empty). */
  claimed: boolean;
  now?: () => number;
  timers?: PolicyTimers;
  /** Called when the schedule opens or closes (not at start). */
  onChange?: (open: boolean) => void;
}

export interface NetworkPolicy {
  /** The most pooled requests admitted right now; a pooled request beyond it gets 429. */
  pooledLimit(): number;
  /** The capacity heartbeats declare: the pooled limit (0 while closed). */
  offeredCapacity(): number;
  /** Whether pooled traffic is accepted now. */
  open(): boolean;
  /** One line for `gbt serve`. */
  describe(): string;
  /** Stops the boundary timer. */
  stop(): void;
}

/** The longest delay setTimeout takes; a later boundary is reached in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Checks that network mode can run: an owner, a valid schedule and time zone. Returns the parsed
 * schedule and zone (undefined outside network mode); throws the GbtError to show otherwise.
 */
export function checkNetworkMode(parameters: {
  mode: NodeMode;
  claimed: boolean;
  config: NetworkConfig | undefined;
}): { schedule: Schedule; timeZone: string } | undefined {
  if (parameters.mode !== "network") return undefined;
  if (!parameters.claimed) {
    throw new GbtError("CLAIM_REQUIRED", "Network mode needs an owner: this node has none.", {
      details: { mode: "network", reason: "claim_required" },
      hint: "Claim the node first: `gbt owner claim GBT-XXXX --key-file owner.key` with the claim code `gbt status` shows (the owner's stake backs it on the gateway), or serve in mode local.",
    });
  }
  const schedule = parseSchedule(parameters.config?.schedule ?? "always");
  const timeZone = resolveTimeZone(parameters.config?.timezone);
  return { schedule, timeZone };
}

/** Pooled slots: ⌊maxShare × capacity⌋ but at least one, then at most maxConcurrent. */
export function pooledSlots(capacity: number, config: NetworkConfig | undefined): number {
  const share = config?.maxShare;
  const shared = share === undefined ? capacity : Math.max(1, Math.floor(share * capacity));
  return Math.min(shared, config?.maxConcurrent ?? shared, capacity);
}

export function createNetworkPolicy(options: NetworkPolicyOptions): NetworkPolicy {
  const { capacity, config, mode } = options;
  const checked = checkNetworkMode({ mode, claimed: options.claimed, config });
  if (!checked) {
    return {
      pooledLimit: () => capacity,
      offeredCapacity: () => capacity,
      open: () => true,
      describe: () => `${mode} mode: a linked gateway may use all ${capacity} slots, at any time`,
      stop: () => undefined,
    };
  }
  const { schedule, timeZone } = checked;
  const now = options.now ?? Date.now;
  const timers: PolicyTimers = options.timers ?? {
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
  const slots = pooledSlots(capacity, config);
  const openNow = () => isOpen(schedule, new Date(now()), timeZone);
  let last = openNow();
  let handle: unknown;
  let stopped = false;
  /** When the schedule next opens or closes (ms; Infinity: never): until then `last` holds. */
  let changeAt = Number.POSITIVE_INFINITY;

  const arm = () => {
    if (stopped) return;
    const at = new Date(now());
    const change = nextChange(schedule, at, timeZone);
    changeAt = change === null ? Number.POSITIVE_INFINITY : change.getTime();
    if (change === null) return;
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(1, change.getTime() - at.getTime()));
    handle = timers.setTimeout(fire, delay);
    (handle as { unref?: () => void } | undefined)?.unref?.();
  };
  const fire = () => {
    handle = undefined;
    if (stopped) return;
    const current = openNow();
    if (current !== last) {
      last = current;
      options.onChange?.(current);
    }
    arm();
  };
  arm();

  /**
   * Open now? Asked on every pooled request: the answer the timer keeps, unless the boundary has
   * passed without it (a late timer, a machine that slept), then settled at once.
   */
  const current = () => {
    if (!stopped && now() >= changeAt) {
      if (handle !== undefined) timers.clearTimeout(handle);
      fire();
    }
    return last;
  };
  const pooledLimit = () => (current() ? slots : 0);
  return {
    pooledLimit,
    offeredCapacity: pooledLimit,
    open: current,
    describe() {
      const at = new Date(now());
      const open = openNow();
      const change = nextChange(schedule, at, timeZone);
      const when = schedule.always
        ? "always"
        : `${schedule.text.replaceAll("-", "–").replaceAll(",", ", ")} ${timeZone} (${open ? "open" : "closed"} now${
            change ? `, ${open ? "until" : "opens"} ${formatLocalTime(change, timeZone, at)}` : ""
          })`;
      const concurrent = config?.maxConcurrent !== undefined ? `, ≤ ${config.maxConcurrent} at once` : "";
      const shared = pooledSlots(
        capacity,
        config?.maxShare === undefined ? undefined : { maxShare: config.maxShare },
      );
      return `network mode: pooled traffic ${when}, up to ${shared} of ${capacity} slots${concurrent}`;
    },
    stop() {
      stopped = true;
      if (handle !== undefined) timers.clearTimeout(handle);
      handle = undefined;
    },
  };
}
