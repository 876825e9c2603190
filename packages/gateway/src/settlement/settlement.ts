/**
 * Settlement, a feature of the gateway. Every epoch it reads each node's cumulative earnings from the
 * ledger, builds the Merkle tree Settlement verifies, and posts its root on chain with the gateway
 * key (which holds the settler role); an epoch with no new earnings posts nothing. Nodes fetch
 * their proof from `GET /v1/settlement/proofs/:node` and claim themselves (`gbt payout claim`);
 * `GET /v1/settlement` shows the latest epoch and an admin's `POST /v1/settlement/epochs` settles
 * one now.
 */
import { buildCumulativeTree, type ChainWriter, postRoot, readSettlementState } from "@gbt/contracts";
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

/** The outcome of one epoch run. */
export type EpochOutcome =
  | { posted: true; epoch: string; root: Hex; total: string; nodes: number; txHash: Hex }
  | { posted: false; reason: "no earnings" | "unchanged"; epoch: string | null };

/** What settlement uses of the gateway. */
export interface SettlementPorts {
  /** The config's settlement section (the options may bring their own). */
  settlement: GatewayConfig["settlement"];
  /** The gateway key: it holds the settler role on chain. */
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
  /** Overrides the config's `settlement` section (tests). */
  settlement?: {
    rpcUrl: string;
    chainId: number;
    contract: string;
    epochSeconds: number;
    weiPerMicroCredit: string;
  };
  /** Signs the root transactions; default a client over the RPC with the gateway key. */
  client?: ChainWriter;
}

/** Settlement as created; the embedding process (gbt up, tests) can settle an epoch now through it. */
export interface Settlement extends FeatureStarter<SettlementPorts> {
  settleNow(): Promise<EpochOutcome>;
}

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

export function createSettlement(options: SettlementOptions = {}): Settlement {
  let settle: (() => Promise<EpochOutcome>) | undefined;
  return {
    name: "settlement",
    settleNow() {
      if (!settle) throw new GbtError("CONFLICT", "Settlement has not started.");
      return settle();
    },
    start(ports) {
      const config = options.settlement ?? ports.settlement;
      if (!config) {
        throw new GbtError("CONFIG_INVALID", "Settlement needs the gateway config's settlement section.");
      }
      const contract = getAddress(config.contract);
      const weiPerMicroCredit = BigInt(config.weiPerMicroCredit);
      const logger = ports.logger.child({ component: "settlement" });
      const store = new EpochStore(ports.db);
      const client: ChainWriter =
        options.client ??
        createClient({
          account: ports.account,
          chain: {
            id: config.chainId,
            name: `chain ${config.chainId}`,
            nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
            rpcUrls: { default: { http: [config.rpcUrl] } },
          },
          transport: http(config.rpcUrl),
          cacheTime: 0,
        });

      const runEpoch = async (): Promise<EpochOutcome> => {
        await ports.settled();
        const earnings = cumulativeEarnings(ports.ledger.providerEarnings(), weiPerMicroCredit).filter(
          (e) => e.cumulative > 0n,
        );
        const state = await readSettlementState(client, { deployment: { settlement: contract } });
        const onChain = {
          epoch: state.effective.epoch,
          root: state.effective.root,
          funded: state.totalFunded,
        };
        if (earnings.length === 0) return { posted: false, reason: "no earnings", epoch: null };
        const tree = buildCumulativeTree(earnings);
        if (tree.root === onChain.root) {
          // Posted before a crash kept it from being recorded: record it now so its proofs are served.
          if (store.latest(contract)?.root !== tree.root) {
            store.record({
              epoch: onChain.epoch,
              contract,
              root: tree.root,
              total: tree.total,
              txHash: "0x",
              postedAt: ports.now(),
              tree,
            });
          }
          return { posted: false, reason: "unchanged", epoch: onChain.epoch.toString() };
        }
        const funded = onChain.funded;
        if (tree.total > funded) {
          throw new GbtError(
            "INSUFFICIENT_FUNDS",
            "Cumulative earnings exceed what Settlement is funded with.",
            {
              details: { total: tree.total.toString(), funded: funded.toString() },
              hint: "Fund the Settlement contract from the rewards pool.",
            },
          );
        }
        const epoch = onChain.epoch + 1n;
        const { hash } = await postRoot(client, {
          deployment: { settlement: contract },
          epoch,
          root: tree.root,
          total: tree.total,
        });
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
          { epoch: epoch.toString(), root: tree.root, nodes: earnings.length, txHash: hash },
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
        .get(`${gatewayPaths.settlementProofs}/:node`, named("settlement_proof"), (c) => {
          const raw = c.req.param("node");
          if (!isAddress(raw, { strict: false })) {
            throw new GbtError("INVALID_ADDRESS", `${raw.slice(0, 64)} is not a node address.`);
          }
          const latest = store.latest(contract);
          if (!latest) {
            throw new GbtError("NOT_FOUND", "No settlement epoch has been posted yet.", {
              hint: "Earnings are posted once per epoch; try again after the next one.",
            });
          }
          return c.json(proofBody(latest, getAddress(raw), config.chainId));
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
