/** The posted epochs in gateway.db, read back as the proofs' source. */
import { buildCumulativeTree, type CumulativeTree } from "@gbt/contracts";
import type { Address, Hex } from "viem";
import type { GatewayDatabase } from "../gateway-database.js";
import { migrateSettlement } from "./settlement-database.js";

export interface PostedEpoch {
  epoch: bigint;
  contract: Address;
  root: Hex;
  total: bigint;
  txHash: Hex;
  postedAt: number;
  tree: CumulativeTree;
}

interface Row {
  epoch: number;
  contract: string;
  root: string;
  total: string;
  entries_json: string;
  tx_hash: string;
  posted_at: number;
}

function fromRow(row: Row): PostedEpoch {
  const entries = JSON.parse(row.entries_json) as { node: Address; cumulative: string }[];
  return {
    epoch: BigInt(row.epoch),
    contract: row.contract as Address,
    root: row.root as Hex,
    total: BigInt(row.total),
    txHash: row.tx_hash as Hex,
    postedAt: row.posted_at,
    tree: buildCumulativeTree(entries.map((e) => ({ node: e.node, cumulative: BigInt(e.cumulative) }))),
  };
}

export class EpochStore {
  readonly #db: GatewayDatabase;

  constructor(db: GatewayDatabase) {
    migrateSettlement(db);
    this.#db = db;
  }

  /** The latest epoch posted to `contract`, or undefined before the first. */
  latest(contract: Address): PostedEpoch | undefined {
    const row = this.#db
      .prepare("SELECT * FROM settlement_epochs WHERE contract = ? ORDER BY epoch DESC LIMIT 1")
      .get(contract) as Row | undefined;
    return row && fromRow(row);
  }

  /** Epoch `epoch` as posted to `contract` (the last root recorded for it), or undefined. */
  get(contract: Address, epoch: bigint): PostedEpoch | undefined {
    const row = this.#db
      .prepare("SELECT * FROM settlement_epochs WHERE contract = ? AND epoch = ?")
      .get(contract, Number(epoch)) as Row | undefined;
    return row && fromRow(row);
  }

  record(epoch: Omit<PostedEpoch, "tree"> & { tree: CumulativeTree }): void {
    this.#db
      .prepare(
        `INSERT INTO settlement_epochs (epoch, contract, root, total, entries_json, tx_hash, posted_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (contract, epoch) DO UPDATE SET root = excluded.root, total = excluded.total,
           entries_json = excluded.entries_json, tx_hash = excluded.tx_hash, posted_at = excluded.posted_at`,
      )
      .run(
        Number(epoch.epoch),
        epoch.contract,
        epoch.root,
        epoch.total.toString(),
        JSON.stringify(
          epoch.tree.entries.map((e) => ({ node: e.node, cumulative: e.cumulative.toString() })),
        ),
        epoch.txHash,
        epoch.postedAt,
      );
  }
}
