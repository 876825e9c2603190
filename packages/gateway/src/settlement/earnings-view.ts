/**
 * A node's earnings as the gateway's ledger states them, and the signed view of them the node
 * reads (`GET /v1/nodes/:node/earnings`, see http/routes/earnings-routes.ts): per period (today
 * UTC, the last 7 days, the current settlement epoch, all time) the node's served requests,
 * tokens, what consumers paid, what the node earned (credited to its provider account) and what
 * is held (suspense: the receipt did not check out), the receipts by status, and the multipliers
 * the receipt settler applied (ramp-up, switch penalty, bounty, reputation), weighted by debit.
 * With settlement on: what the latest posted root owes the node and what no root holds yet.
 *
 * Read from `usage_records` (one row per settled request, its provider credit and the multipliers
 * behind it, written by billing/settlement-writer.ts) and `settlement_epochs`. An index on
 * (node, created_at), kept in its own meta row as settlement does, keeps a public read from
 * scanning every node's requests.
 */
import {
  type EarningsMultipliers,
  type EarningsPeriod,
  type EarningsViewPayload,
  earningsViewPayloadSchema,
  GbtError,
  type SignedObject,
  signObject,
} from "@gbt/protocol";
import { migrate } from "@gbt/store";
import { type Address, getAddress, isAddress, isAddressEqual, type LocalAccount } from "viem";
import type { GatewayDatabase } from "../gateway-database.js";
import { EpochStore } from "./epoch-store.js";

const DAY_MS = 86_400_000;

export const earningsMigrations: readonly string[] = [
  "CREATE INDEX IF NOT EXISTS usage_records_by_node ON usage_records (node, created_at)",
];

/** Brings the earnings index to the latest schema; safe to call on every start. */
export function migrateEarnings(db: GatewayDatabase): void {
  migrate(db, { prefix: "earnings", label: "Earnings", migrations: earningsMigrations });
}

/** Where the gateway settles, when it does (the config's `settlement` section). */
export interface EarningsSettlement {
  chainId: number;
  contract: string;
  weiPerMicroCredit: string;
}

export interface EarningsViewParameters {
  node: string;
  gateway: Address;
  settlement?: EarningsSettlement | undefined;
  /** Clock in milliseconds. */
  now?: () => number;
}

interface PeriodRow {
  requests: number;
  prompt: number | null;
  completion: number | null;
  debit: number | null;
  earned: number | null;
  held: number | null;
  valid: number | null;
  missing: number | null;
  invalid: number | null;
  mismatch: number | null;
  provider_share: number | null;
  ramp: number | null;
  switch_penalty: number | null;
  bounty: number | null;
  reputation: number | null;
}

// Each multiplier weighted by what the request debited; a plain mean when nothing was debited (free models).
const weighted = (key: string, fallback: number) => {
  const value = `COALESCE(json_extract(multipliers_json, '$.${key}'), ${fallback})`;
  return `CASE WHEN SUM(debit) > 0 THEN SUM(debit * ${value}) / SUM(debit) ELSE AVG(${value}) END`;
};

const PERIOD_SQL = `SELECT COUNT(*) AS requests,
    SUM(prompt_tokens) AS prompt, SUM(completion_tokens) AS completion, SUM(debit) AS debit,
    SUM(CASE WHEN receipt_status = 'valid' THEN provider_credit ELSE 0 END) AS earned,
    SUM(CASE WHEN receipt_status = 'valid' THEN 0 ELSE provider_credit END) AS held,
    SUM(receipt_status = 'valid') AS valid, SUM(receipt_status = 'missing') AS missing,
    SUM(receipt_status = 'invalid') AS invalid, SUM(receipt_status = 'mismatch') AS mismatch,
    ${weighted("providerShare", 1)} AS provider_share, ${weighted("rampFactor", 1)} AS ramp,
    ${weighted("switchPenalty", 1)} AS switch_penalty, ${weighted("bounty", 1)} AS bounty,
    ${weighted("reputation", 1)} AS reputation
  FROM usage_records WHERE node = ? AND created_at >= ? AND created_at < ?`;

/** Four decimals: enough to read a factor, and the same number on every platform. */
const round = (value: number) => Math.round(value * 10_000) / 10_000;

function multipliersOf(raw: Record<string, unknown>): EarningsMultipliers {
  const factor = (key: string) => {
    const value = raw[key];
    return typeof value === "number" && Number.isFinite(value) ? round(value) : 1;
  };
  return {
    providerShare: factor("providerShare"),
    rampFactor: factor("rampFactor"),
    switchPenalty: factor("switchPenalty"),
    bounty: factor("bounty"),
    reputation: factor("reputation"),
  };
}

/** The start of the UTC day holding `at`. */
export function startOfUtcDay(at: number): number {
  return Math.floor(at / DAY_MS) * DAY_MS;
}

/** Reads a node's earnings from the gateway database. */
export class EarningsReader {
  readonly #db: GatewayDatabase;
  readonly #period;
  readonly #latest;
  readonly #epochs: EpochStore;

  constructor(db: GatewayDatabase) {
    migrateEarnings(db);
    this.#db = db;
    this.#epochs = new EpochStore(db);
    this.#period = db.prepare(PERIOD_SQL);
    this.#latest = db.prepare(
      "SELECT multipliers_json FROM usage_records WHERE node = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
    );
  }

  /** The node's period [from, to); `from` null: since the first request. */
  period(node: Address, from: number | null, to: number): EarningsPeriod {
    const row = this.#period.get(node.toLowerCase(), from ?? 0, to) as PeriodRow;
    const n = (value: number | null) => value ?? 0;
    return {
      from,
      to,
      requests: row.requests,
      promptTokens: n(row.prompt),
      completionTokens: n(row.completion),
      debitMicro: n(row.debit),
      earnedMicro: n(row.earned),
      heldMicro: n(row.held),
      receipts: {
        valid: n(row.valid),
        missing: n(row.missing),
        invalid: n(row.invalid),
        mismatch: n(row.mismatch),
      },
      multipliers:
        row.requests === 0
          ? null
          : {
              providerShare: round(n(row.provider_share)),
              rampFactor: round(n(row.ramp)),
              switchPenalty: round(n(row.switch_penalty)),
              bounty: round(n(row.bounty)),
              reputation: round(n(row.reputation)),
            },
    };
  }

  /** The multipliers of the node's latest settled request, or null. */
  latestMultipliers(node: Address): EarningsMultipliers | null {
    const row = this.#latest.get(node.toLowerCase()) as { multipliers_json: string } | undefined;
    if (!row) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(row.multipliers_json);
    } catch {
      return null;
    }
    return typeof raw === "object" && raw !== null ? multipliersOf(raw as Record<string, unknown>) : null;
  }

  /** The whole view of one node, as of `now()`. */
  view(parameters: EarningsViewParameters): EarningsViewPayload {
    const node = parseNode(parameters.node);
    const asOf = (parameters.now ?? Date.now)();
    const to = asOf + 1;
    return this.#db.transaction(() => {
      const settlement = parameters.settlement;
      const contract = settlement ? getAddress(settlement.contract) : undefined;
      const latest = contract ? this.#epochs.latest(contract) : undefined;
      const allTime = this.period(node, null, to);
      let settled: EarningsViewPayload["settlement"] = null;
      if (settlement && contract) {
        const weiPerMicro = BigInt(settlement.weiPerMicroCredit);
        const earnedWei = BigInt(allTime.earnedMicro) * weiPerMicro;
        const cumulativeWei =
          latest?.tree.entries.find((e) => isAddressEqual(e.node, node))?.cumulative ?? 0n;
        settled = {
          chainId: settlement.chainId,
          contract,
          weiPerMicroCredit: weiPerMicro.toString(),
          earnedWei: earnedWei.toString(),
          latestRoot: latest
            ? {
                epoch: latest.epoch.toString(),
                root: latest.root,
                txHash: latest.txHash,
                postedAt: latest.postedAt,
                cumulativeWei: cumulativeWei.toString(),
              }
            : null,
          unpostedWei: (earnedWei > cumulativeWei ? earnedWei - cumulativeWei : 0n).toString(),
        };
      }
      const payload: EarningsViewPayload = {
        node,
        gateway: getAddress(parameters.gateway),
        asOf,
        periods: {
          today: this.period(node, startOfUtcDay(asOf), to),
          week: this.period(node, asOf - 7 * DAY_MS, to),
          epoch: latest ? this.period(node, latest.postedAt, to) : { ...allTime },
          allTime,
        },
        latestMultipliers: this.latestMultipliers(node),
        settlement: settled,
      };
      // What is signed is what the schema says the node will accept.
      return earningsViewPayloadSchema.parse(payload);
    })();
  }
}

/** A node address from a path, checksummed; INVALID_ADDRESS otherwise. */
export function parseNode(raw: string): Address {
  if (!isAddress(raw, { strict: false })) {
    throw new GbtError("INVALID_ADDRESS", `${raw.slice(0, 64)} is not a node address.`, {
      hint: "Pass the node's 0x-prefixed 20-byte address.",
    });
  }
  return getAddress(raw);
}

export interface SignEarningsViewParameters {
  chainId: number;
  /** How long the node may rely on the view (default 300 s). */
  ttlSeconds?: number;
  now?: () => number;
}

/** Signs a view with the gateway key, addressed to its node. */
export function signEarningsView(
  account: LocalAccount,
  payload: EarningsViewPayload,
  parameters: SignEarningsViewParameters,
): Promise<SignedObject<"EarningsView">> {
  const issuedAt = Math.floor((parameters.now ?? Date.now)() / 1000);
  return signObject(account, {
    kind: "EarningsView",
    chainId: parameters.chainId,
    message: {
      gateway: account.address,
      node: payload.node,
      issuedAt,
      expiresAt: issuedAt + (parameters.ttlSeconds ?? 300),
    },
    payload,
  });
}
