/**
 * The gateway's side of the node link: signed registrations and heartbeats in, pool instances
 * out. Each object must be a valid signature by the node it names, addressed to this gateway, for
 * this chain, inside its time window, and newer than the last one seen from that node
 * (registration nonces and heartbeat seqs only grow), so a captured object cannot be replayed.
 * A registration hands the node a fresh link token, kept in the instance's link; the proxy
 * presents it on every forwarded request, and the node serves pooled traffic only with it. The
 * pool's admission check (the model registry's "approved only") filters the models routed.
 */
import { randomBytes } from "node:crypto";
import {
  type GatewayInfo,
  GbtError,
  HttpError,
  heartbeatDetailsSchema,
  LINK_NODE_URL,
  type NodeGpu,
  nodeGpuSchema,
  nodeHealthSchema,
  type RegistrationResponse,
  recoverSignerNative,
  registrationDetailsSchema,
  verifyObject,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Address } from "viem";
import type { InstancePool } from "./instance-pool.js";
import type { NodeChannel, NodeTransport } from "./node-transport.js";
import type { PoolInstance } from "./pool-instance.js";
import type { StakeGate } from "./stake-gate.js";

export interface NodeRegistrarOptions {
  pool: InstancePool;
  /** Checks the URL a node registers, and carries every request to it (its link's transport). */
  transport: NodeTransport;
  /** The gateway's own identity: registrations and heartbeats must be addressed to it. */
  account: { address: Address };
  chainId: number;
  heartbeatIntervalMs: number;
  skewSeconds: number;
  /**
   * The most requests at once any node may claim (`routing.maxCapacity`). A node's declared
   * capacity is believed only up to this and up to its signed benchmark's eligible capacity: a
   * node declaring 4e9 must not win every pick.
   */
  maxCapacity: number;
  /** routing.minStakeGbt: the node's stake on chain is checked at each registration (absent: no minimum). */
  stakeGate?: StakeGate;
  logger: Logger;
  now?: () => number;
}

export class NodeRegistrar {
  readonly #options: NodeRegistrarOptions;
  readonly #now: () => number;
  /** Per node (lower-case address): the last registration nonce and heartbeat seq accepted. */
  readonly #lastNonce = new Map<string, number>();
  readonly #lastSeq = new Map<string, number>();
  /** Per node: the eligible capacity of its signed benchmark, when it sent one (bounds every claim). */
  readonly #benchmarkCapacity = new Map<string, number>();

  constructor(options: NodeRegistrarOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  info(): GatewayInfo {
    return {
      address: this.#options.account.address,
      chainId: this.#options.chainId,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
    };
  }

  /**
   * Verifies a signed NodeRegistration and (re-)registers its instance. `via`: it came over the
   * node's outbound link (link/link-server.ts), whose channel then carries every request to the
   * node; it must be signed by the node that opened the link, for the link's URL.
   */
  async register(
    body: unknown,
    via?: { channel: NodeChannel; node: Address; origin: string },
  ): Promise<RegistrationResponse> {
    const { pool, account, chainId, skewSeconds, logger } = this.#options;
    const signed = await verifyObject(body, {
      recoverSigner: recoverSignerNative,
      kind: "NodeRegistration",
      chainId,
      audience: account.address,
      skewSeconds,
      now: this.#now,
    });
    const message = signed.message;
    const details = registrationDetailsSchema.safeParse(signed.payload);
    if (!details.success) {
      const issue = details.error.issues[0];
      throw new GbtError(
        "INVALID_OBJECT",
        `Registration details invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}.`,
        { details: { path: issue?.path.join(".") } },
      );
    }
    const nodeKey = message.node.toLowerCase();
    const last = this.#lastNonce.get(nodeKey);
    if (last !== undefined && message.nonce <= last) {
      throw new GbtError(
        "REPLAYED",
        `Registration nonce ${message.nonce} is not above the last one (${last}).`,
        {
          details: { node: message.node, nonce: message.nonce, last },
          hint: "Each registration needs a fresh, larger nonce; a copied registration is refused.",
        },
      );
    }
    if (message.capacity < 1) {
      throw new GbtError("INVALID_OBJECT", "A registration must declare a capacity of at least 1.", {
        details: { capacity: message.capacity },
      });
    }
    let url: string;
    if (via !== undefined) {
      if (message.node.toLowerCase() !== via.node.toLowerCase()) {
        throw new HttpError(
          "link_mismatch",
          `This link was opened for ${via.node}; a registration signed by ${message.node} cannot use it.`,
        );
      }
      if (message.url !== LINK_NODE_URL) {
        throw new HttpError(
          "link_mismatch",
          `A registration over an outbound link names the URL ${LINK_NODE_URL}; this one names ${JSON.stringify(message.url)}.`,
          "url",
        );
      }
      url = via.origin;
    } else if (message.url === LINK_NODE_URL) {
      throw new HttpError(
        "invalid_node_url",
        `The URL ${LINK_NODE_URL} means "reach me over my outbound link": register over GET /v1/gateway/link instead (gbt serve --link outbound).`,
        "url",
      );
    } else {
      // Before anything else about the node is believed: the URL policy (scheme, no path, no internal address).
      url = await this.#options.transport.checkUrl(message.url);
      if (details.data.probe === true) await this.#probe(url);
    }
    const models = details.data.models.filter((model) => pool.admits(model, message.node));
    if (models.length === 0) {
      throw new HttpError(
        "policy_denied",
        `This gateway serves only approved models; none of ${details.data.models.map((m) => m.id).join(", ")} is approved.`,
      );
    }
    const benchmark = await this.#benchmarkOf(details.data.benchmark, message.node);
    const benchmarkTokPerSec = benchmark?.decodeTokPerSec ?? null;
    // Last of the checks (it reads the chain): a refusal spends no nonce, so the node can retry the same way.
    await this.#options.stakeGate?.check(message.node);
    this.#lastNonce.set(nodeKey, message.nonce);
    // A heartbeat signed before this registration must not count afterwards.
    this.#lastSeq.set(nodeKey, Math.max(this.#lastSeq.get(nodeKey) ?? 0, message.nonce));
    const instanceId = nodeKey;
    const linkToken = randomBytes(32).toString("base64url");
    if (benchmark !== null && benchmark.eligibleCapacity >= 1) {
      this.#benchmarkCapacity.set(nodeKey, benchmark.eligibleCapacity);
    } else this.#benchmarkCapacity.delete(nodeKey);
    const capacity = this.#boundedCapacity(nodeKey, message.capacity);
    pool.register({
      id: instanceId,
      nodeAddress: message.node,
      url,
      models: models.map((model) => model.id),
      declaredCapacity: capacity,
      benchmarkTokPerSec,
      owners: details.data.owners ?? [],
      link: {
        authorization: `Bearer ${linkToken}`,
        transport: via?.channel ?? this.#options.transport,
        // Everything the node reported (with digests): the admission is re-checked on each heartbeat.
        models: details.data.models,
        backend: details.data.backend,
        gpu: benchmark?.gpu ?? null,
      },
    });
    logger.info(
      {
        node: message.node,
        url,
        ...(via !== undefined ? { link: "outbound" } : {}),
        capacity,
        ...(capacity !== message.capacity ? { declaredCapacity: message.capacity } : {}),
        models: models.map((model) => model.id),
        benchmarkTokPerSec,
      },
      "node registered",
    );
    return { instanceId, linkToken, heartbeatIntervalMs: this.#options.heartbeatIntervalMs };
  }

  /** Verifies a signed Heartbeat and records it; NOT_FOUND (→ 404 unknown_instance) for an unregistered node. */
  async heartbeat(body: unknown): Promise<PoolInstance> {
    const { pool, account, chainId, skewSeconds } = this.#options;
    const signed = await verifyObject(body, {
      recoverSigner: recoverSignerNative,
      kind: "Heartbeat",
      chainId,
      audience: account.address,
      skewSeconds,
      now: this.#now,
    });
    const message = signed.message;
    const details = heartbeatDetailsSchema.safeParse(signed.payload);
    if (!details.success) {
      const issue = details.error.issues[0];
      throw new GbtError(
        "INVALID_OBJECT",
        `Heartbeat details invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}.`,
        { details: { path: issue?.path.join(".") } },
      );
    }
    const nodeKey = message.node.toLowerCase();
    const registered = pool.get(nodeKey);
    if (registered === undefined) {
      throw new GbtError("NOT_FOUND", `Node ${message.node} is not registered with this gateway.`, {
        details: { node: message.node },
        hint: "Register again (POST /v1/gateway/register).",
      });
    }
    const last = this.#lastSeq.get(nodeKey) ?? 0;
    if (message.seq <= last) {
      throw new GbtError("REPLAYED", `Heartbeat seq ${message.seq} is not above the last one (${last}).`, {
        details: { node: message.node, seq: message.seq, last },
      });
    }
    this.#lastSeq.set(nodeKey, message.seq);
    const reported = registered.link.models;
    // Re-checked on every heartbeat: a model delisted since registration stops being routed.
    const models = details.data.models.filter((id) =>
      pool.admits({ id, digest: reported.find((model) => model.id === id)?.digest }, message.node),
    );
    const capacity =
      details.data.capacity >= 1
        ? this.#boundedCapacity(nodeKey, details.data.capacity)
        : details.data.capacity;
    // Its owners change with owner.add and owner.remove jobs: the relay follows within a heartbeat.
    if (details.data.owners !== undefined) registered.link.owners = details.data.owners;
    return pool.heartbeat(nodeKey, {
      models,
      health: details.data.health,
      // 0: the node takes no pooled traffic now (outside its schedule): drained, not dropped.
      draining: details.data.capacity === 0,
      ...(capacity >= 1 && capacity !== registered.declaredCapacity ? { capacity } : {}),
    });
  }

  /**
   * Whether the gateway reaches a gbt node at `url` (its URL policy at connect time, no redirects, a
   * byte cap): GET /healthz must answer 200 with a node's health. The answer says only whether,
   * never what was found there, so a probe tells a caller nothing about the gateway's network.
   */
  async #probe(url: string): Promise<void> {
    let reachable = false;
    try {
      const answer = await this.#options.transport.request(new URL("/healthz", `${url}/`), {
        method: "GET",
        headers: { accept: "application/json" },
        timeoutMs: 3_000,
        maxBytes: 16 * 1024,
      });
      reachable =
        answer.status === 200 && nodeHealthSchema.safeParse(JSON.parse(answer.body.toString("utf8"))).success;
    } catch {
      reachable = false;
    }
    if (!reachable) {
      throw new HttpError(
        "node_unreachable",
        `The gateway cannot reach a gbt node at ${url}: register without a public URL to join over the outbound link (gbt serve --link outbound), or open that port.`,
        "url",
      );
    }
  }

  /** A claimed capacity, believed up to the node's benchmark and the gateway's maximum. */
  #boundedCapacity(nodeKey: string, claimed: number): number {
    const benchmark = this.#benchmarkCapacity.get(nodeKey) ?? Number.POSITIVE_INFINITY;
    return Math.max(1, Math.min(claimed, benchmark, this.#options.maxCapacity));
  }

  /** The node's signed benchmark record's figures; null when absent, not the node's, or expired. */
  async #benchmarkOf(
    record: unknown,
    node: Address,
  ): Promise<{ decodeTokPerSec: number; eligibleCapacity: number; gpu: NodeGpu | null } | null> {
    if (record === null || record === undefined) return null;
    try {
      const signed = await verifyObject(record, {
        recoverSigner: recoverSignerNative,
        kind: "BenchmarkRecord",
        chainId: this.#options.chainId,
        allowedSigners: [node],
        skewSeconds: this.#options.skewSeconds,
        now: this.#now,
      });
      // The payload is the node's own (signed); only a well-formed, bounded `gpu` is kept.
      const gpu = nodeGpuSchema.safeParse((signed.payload as { gpu?: unknown } | null)?.gpu);
      return {
        decodeTokPerSec: signed.message.decodeTokPerSecMilli / 1000,
        eligibleCapacity: signed.message.eligibleCapacity,
        gpu: gpu.success ? gpu.data : null,
      };
    } catch (error) {
      this.#options.logger.warn(
        { node, reason: error instanceof GbtError ? error.code : String(error) },
        "ignoring the registration's benchmark record",
      );
      return null;
    }
  }
}
