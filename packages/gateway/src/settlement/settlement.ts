/**
 * Settlement, a feature of the gateway. Every epoch it reads each node's cumulative earnings from the
 * ledger, builds the Merkle tree Settlement verifies, and posts its root on chain with the settler
 * key (`settlement.settlerKeyFile`, else the gateway key; it must hold the settler role); an epoch
 * with no new earnings posts nothing. A posted root is pending for the contract's delay, while
 * governance can cancel or replace it, and only one waits at a time: an epoch that finds one still
 * waiting posts nothing ("pending"), and the next one states the whole cumulative debt anyway.
 * Nodes fetch their proof of the root *in effect* from `GET /v1/settlement/proofs/:node` and claim
 * themselves (`gbt payout claim`); `GET /v1/settlement` shows the latest posted epoch and an
 * admin's `POST /v1/settlement/epochs` settles one now.
 */
import {
  buildCumulativeTree,
  type ChainWriter,
  postRoot,
  readSettlementState,
  type SettlementState,
} from "@gbt/contracts";
import { GbtError, gatewayPaths } from "@gbt/protocol";
import { Hono, type MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import {
  type Address,
  createClient,
  getAddress,
  type Hex,
  http,
  isAddress,
  type PrivateKeyAccount,
} from "viem";
import type { Ledger } from "../billing/ledger.js";
import type { GatewayConfig } from "../gateway-config.js";
import type { GatewayDatabase } from "../gateway-database.js";
import type { FeatureStarter } from "../gateway-feature.js";
import { errorScope } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv } from "../http/gateway-env.js";
import { cumulativeEarnings } from "./cumulative-earnings.js";
import { EpochStore, type PostedEpoch } from "./epoch-store.js";
import { loadSettlerAccount } from "./settler-account.js";

/** The outcome of one epoch run. */
export type EpochOutcome =
  | { posted: true; epoch: string; root: Hex; total: string; nodes: number; txHash: Hex }
  | { posted: false; reason: "no earnings" | "unchanged" | "pending"; epoch: string | null };

/** What settlement uses of the gateway. */
export interface SettlementPorts {
  /** The config's settlement section (the options may bring their own). */
  settlement: GatewayConfig["settlement"];
  /** The gateway key: it signs roots unless a settler key of its own is configured. */
  account: PrivateKeyAccount;
  /** Holds the epoch table. */
  db: GatewayDatabase;
  ledger: Pick<Ledger, "providerEarnings">;
  /** Resolves once every finished request so far is settled in the ledger. */
  settled(): Promise<void>;
  admin: MiddlewareHandler<GatewayEnv>;
  logger: Logger;
  now: () => number;
}

export interface SettlementOptions {
  /** Overrides the config's `settlement` section (tests, gbt up). */
  settlement?: {
    rpcUrl: string;
    chainId: number;
    contract: string;
    epochSeconds: number;
    weiPerMicroCredit: string;
    settlerKeyFile?: string;
  };
  /** Signs the root transactions; default a client over the RPC with the settler key. */
  client?: ChainWriter;
  /** Where GBT_SETTLER_PASSPHRASE is read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Settlement as created; the embedding process (gbt up, tests) can settle an epoch now through it. */
export interface Settlement extends FeatureStarter<SettlementPorts> {
  settleNow(): Promise<EpochOutcome>;
  /** The settlement section it runs on (given, or the config's), once started: the earnings view reads it. */
  section?(): { chainId: number; contract: string; weiPerMicroCredit: string } | undefined;
}

const isoSeconds = (seconds: number) => new Date(seconds * 1000).toISOString();

function proofBody(epoch: PostedEpoch, node: Address, chainId: number) {
  const entry = epoch.tree.proofFor(node);
  if (!entry) {
    throw new GbtError("NOT_FOUND", `Node ${node} has no earnings in settlement epoch ${epoch.epoch}.`, {
      details: { node, epoch: epoch.epoch.toString() },
      hint: "Earnings appear in the first epoch after the node served paid requests.",
    });
  }
  return {
    node: entry.node,
    cumulative: entry.cumulative.toString(),
    proof: entry.proof,
    epoch: epoch.epoch.toString(),
    root: epoch.root,
    contract: epoch.contract,
    chainId,
  };
}

/** The posted epoch whose root is in effect on chain, or why there is none to prove against. */
function effectiveEpoch(store: EpochStore, contract: Address, state: SettlementState): PostedEpoch {
  const { effective, pending } = state;
  if (effective.epoch === 0n) {
    throw new GbtError(
      "NOT_FOUND",
      pending
        ? `No settlement epoch is in effect yet: epoch ${pending.epoch} takes effect at ${isoSeconds(pending.effectiveAt)}.`
        : "No settlement epoch has been posted yet.",
      {
        ...(pending ? { details: { pendingEpoch: pending.epoch.toString() } } : {}),
        hint: "Earnings are posted once per epoch and pay after the contract's delay; try again later.",
      },
    );
  }
  const posted = store.get(contract, effective.epoch);
  if (!posted || posted.root !== effective.root) {
    throw new GbtError(
      "NOT_FOUND",
      `The root in effect (epoch ${effective.epoch}) is not one this gateway posted, so it has no proofs of it.`,
      {
        details: { epoch: effective.epoch.toString(), root: effective.root },
        hint: "Governance replaced it; claim against the proofs governance published, or after the next epoch.",
      },
    );
  }
  return posted;
}

export function createSettlement(options: SettlementOptions = {}): Settlement {
  let settle: (() => Promise<EpochOutcome>) | undefined;
  let onChain: { chainId: number; contract: string; weiPerMicroCredit: string } | undefined;
  return {
    name: "settlement",
    section: () => onChain,
    settleNow() {
      if (!settle) throw new GbtError("CONFLICT", "Settlement has not started.");
      return settle();
    },
    async start(ports) {
      const config = options.settlement ?? ports.settlement;
      if (!config) {
        throw new GbtError("CONFIG_INVALID", "Settlement needs the gateway config's settlement section.");
      }
      const contract = getAddress(config.contract);
      onChain = { chainId: config.chainId, contract, weiPerMicroCredit: config.weiPerMicroCredit };
      const deployment = { settlement: contract };
      const weiPerMicroCredit = BigInt(config.weiPerMicroCredit);
      const logger = ports.logger.child({ component: "settlement" });
      const store = new EpochStore(ports.db);
      const settler = config.settlerKeyFile
        ? await loadSettlerAccount(config.settlerKeyFile, options.env)
        : ports.account;
      const client: ChainWriter =
        options.client ??
        createClient({
          account: settler,
          chain: {
            id: config.chainId,
            name: `chain ${config.chainId}`,
            nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
            rpcUrls: { default: { http: [config.rpcUrl] } },
          },
          transport: http(config.rpcUrl),
          cacheTime: 0,
        });
      logger.info(
        { settler: client.account.address, gatewayKey: settler === ports.account },
        "settlement roots signed by this settler",
      );

      const runEpoch = async (): Promise<EpochOutcome> => {
        await ports.settled();
        const earnings = cumulativeEarnings(ports.ledger.providerEarnings(), weiPerMicroCredit).filter(
          (e) => e.cumulative > 0n,
        );
        const state = await readSettlementState(client, { deployment });
        if (earnings.length === 0) return { posted: false, reason: "no earnings", epoch: null };
        const tree = buildCumulativeTree(earnings);
        const latest = state.pending ?? state.effective;
        if (tree.root === latest.root) {
          // Posted before a crash kept it from being recorded: record it now so its proofs are served.
          if (store.get(contract, latest.epoch)?.root !== tree.root) {
            store.record({
              epoch: latest.epoch,
              contract,
              root: tree.root,
              total: tree.total,
              txHash: "0x",
              postedAt: ports.now(),
              tree,
            });
          }
          return { posted: false, reason: "unchanged", epoch: latest.epoch.toString() };
        }
        if (state.pending) {
          // One root waits at a time; the next epoch's root states the whole debt, so nothing is lost.
          logger.info(
            { epoch: state.pending.epoch.toString(), effectiveAt: isoSeconds(state.pending.effectiveAt) },
            "settlement root still pending; posting after it takes effect",
          );
          return { posted: false, reason: "pending", epoch: state.pending.epoch.toString() };
        }
        const epoch = state.effective.epoch + 1n;
        if (store.get(contract, epoch)?.root === tree.root) {
          // Recorded as posted, yet neither pending nor in effect: governance cancelled this very root.
          logger.warn(
            { epoch: epoch.toString(), root: tree.root },
            "governance cancelled this settlement root; not posting it again until earnings change",
          );
          return { posted: false, reason: "unchanged", epoch: state.effective.epoch.toString() };
        }
        if (tree.total > state.totalFunded) {
          throw new GbtError(
            "INSUFFICIENT_FUNDS",
            "Cumulative earnings exceed what Settlement is funded with.",
            {
              details: { total: tree.total.toString(), funded: state.totalFunded.toString() },
              hint: "Fund the Settlement contract from the rewards pool.",
            },
          );
        }
        const { hash } = await postRoot(client, { deployment, epoch, root: tree.root, total: tree.total });
        store.record({
          epoch,
          contract,
          root: tree.root,
          total: tree.total,
          txHash: hash,
          postedAt: ports.now(),
          tree,
        });
        logger.info(
          {
            epoch: epoch.toString(),
            root: tree.root,
            nodes: earnings.length,
            txHash: hash,
            effectiveAfterSeconds: state.rootDelaySeconds,
          },
          "settlement root posted",
        );
        return {
          posted: true,
          epoch: epoch.toString(),
          root: tree.root,
          total: tree.total.toString(),
          nodes: earnings.length,
          txHash: hash,
        };
      };

      // One epoch at a time: a timer tick and an admin request never post concurrently.
      let running: Promise<EpochOutcome> | undefined;
      settle = () => {
        running ??= runEpoch().finally(() => {
          running = undefined;
        });
        return running;
      };
      const tick = () => {
        settle?.().catch((error: unknown) =>
          logger.warn({ err: error }, "settlement epoch failed; retrying next epoch"),
        );
      };
      const timer = setInterval(tick, config.epochSeconds * 1000);
      timer.unref();

      // Which root is in effect is the chain's to say (its clock, governance's cancels): proofs read
      // it, with at most one read in flight however many nodes ask at once.
      let reading: Promise<SettlementState> | undefined;
      const readState = () => {
        reading ??= readSettlementState(client, { deployment }).finally(() => {
          reading = undefined;
        });
        return reading;
      };

      // The chain's refusals (unfunded, not the settler…) are upstream failures, not the caller's.
      const routes = new Hono<GatewayEnv>()
        .use(`${gatewayPaths.settlement}/*`, errorScope("chain", "settlement"))
        .get(gatewayPaths.settlement, named("settlement_status"), (c) => {
          const latest = store.latest(contract);
          return c.json({
            contract,
            chainId: config.chainId,
            epochSeconds: config.epochSeconds,
            latest: latest
              ? {
                  epoch: latest.epoch.toString(),
                  root: latest.root,
                  total: latest.total.toString(),
                  nodes: latest.tree.entries.length,
                  txHash: latest.txHash,
                  postedAt: new Date(latest.postedAt).toISOString(),
                }
              : null,
          });
        })
        .post(gatewayPaths.settlementEpochs, named("settlement_settle"), ports.admin, async (c) =>
          c.json((await settle?.()) ?? null),
        )
        .get(`${gatewayPaths.settlementProofs}/:node`, named("settlement_proof"), async (c) => {
          const raw = c.req.param("node");
          if (!isAddress(raw, { strict: false })) {
            throw new GbtError("INVALID_ADDRESS", `${raw.slice(0, 64)} is not a node address.`);
          }
          const posted = effectiveEpoch(store, contract, await readState());
          return c.json(proofBody(posted, getAddress(raw), config.chainId));
        });

      return {
        routes,
        async close() {
          clearInterval(timer);
          await running?.catch(() => undefined);
        },
      };
    },
  };
}
