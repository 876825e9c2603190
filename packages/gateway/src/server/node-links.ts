/**
 * The gateway's side of the node link: signed registrations and heartbeats in, routing
 * instances out. Each object must be a valid signature by the node it names, addressed to this
 * gateway, for this chain, inside its time window, and newer than the last one seen from that node
 * (registration nonces and heartbeat seqs only grow), so a captured object cannot be replayed.
 * A registration hands the node a fresh link token; the proxy presents it on every forwarded
 * request, and the node serves pooled traffic only with it.
 */
import { randomBytes } from "node:crypto";
import {
  type GatewayInfo,
  GbtError,
  type HeartbeatDetails,
  HttpError,
  heartbeatDetailsSchema,
  type RegistrationDetails,
  type RegistrationResponse,
  recoverSignerNative,
  registrationDetailsSchema,
  verifyObject,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Address, PrivateKeyAccount } from "viem";
import type { InstanceRegistry, RoutingInstance } from "../routing/instance-registry.js";

export interface NodeLinksOptions {
  registry: InstanceRegistry;
  account: PrivateKeyAccount;
  chainId: number;
  heartbeatIntervalMs: number;
  skewSeconds: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Whether a node may register and serve one of its models (e.g. the model registry's "approved
 * only" policy). Models refused are left out of the node's routing; a node left with none is
 * refused with 403 `policy_denied`.
 */
export type ModelAdmission = (model: { id: string; digest?: string | undefined }, node: Address) => boolean;

/** What the proxy needs to forward a request to an instance. */
export interface InstanceLink {
  instanceId: string;
  node: Address;
  url: string;
  /** `Bearer <token>`, precomputed. */
  authorization: string;
  models: RegistrationDetails["models"];
  backend: RegistrationDetails["backend"];
  lastHealth: HeartbeatDetails["health"] | null;
}

export class NodeLinks {
  readonly #options: NodeLinksOptions;
  readonly #now: () => number;
  /** Per node (lower-case address): the last registration nonce and heartbeat seq accepted. */
  readonly #lastNonce = new Map<string, number>();
  readonly #lastSeq = new Map<string, number>();
  readonly #links = new Map<string, InstanceLink>();
  #admission: ModelAdmission | undefined;

  constructor(options: NodeLinksOptions) {
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

  link(instanceId: string): InstanceLink | undefined {
    return this.#links.get(instanceId);
  }

  links(): IterableIterator<InstanceLink> {
    return this.#links.values();
  }

  /** Installs (or removes) the check of which models nodes may register and serve. */
  setModelAdmission(admission: ModelAdmission | undefined): void {
    this.#admission = admission;
  }

  /** Verifies a signed NodeRegistration and (re-)registers its instance. */
  async register(body: unknown): Promise<RegistrationResponse> {
    const { registry, account, chainId, skewSeconds, logger } = this.#options;
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
    const admission = this.#admission;
    const models = admission
      ? details.data.models.filter((model) => admission(model, message.node))
      : details.data.models;
    if (models.length === 0) {
      throw new HttpError(
        "policy_denied",
        `This gateway serves only approved models; none of ${details.data.models.map((m) => m.id).join(", ")} is approved.`,
      );
    }
    const benchmarkTokPerSec = await this.#benchmarkOf(details.data.benchmark, message.node);
    this.#lastNonce.set(nodeKey, message.nonce);
    // A heartbeat signed before this registration must not count afterwards.
    this.#lastSeq.set(nodeKey, Math.max(this.#lastSeq.get(nodeKey) ?? 0, message.nonce));
    const instanceId = nodeKey;
    registry.register({
      id: instanceId,
      nodeAddress: message.node,
      url: message.url.replace(/\/+$/, ""),
      models: models.map((model) => model.id),
      declaredCapacity: message.capacity,
      benchmarkTokPerSec,
    });
    const linkToken = randomBytes(32).toString("base64url");
    this.#links.set(instanceId, {
      instanceId,
      node: message.node,
      url: message.url.replace(/\/+$/, ""),
      authorization: `Bearer ${linkToken}`,
      // Everything the node reported (with digests): the admission is re-checked on each heartbeat.
      models: details.data.models,
      backend: details.data.backend,
      lastHealth: null,
    });
    logger.info(
      {
        node: message.node,
        url: message.url,
        capacity: message.capacity,
        models: models.map((model) => model.id),
        benchmarkTokPerSec,
      },
      "node registered",
    );
    return { instanceId, linkToken, heartbeatIntervalMs: this.#options.heartbeatIntervalMs };
  }

  /** Verifies a signed Heartbeat and records it; NOT_FOUND (→ 404 unknown_instance) for an unregistered node. */
  async heartbeat(body: unknown): Promise<RoutingInstance> {
    const { registry, account, chainId, skewSeconds } = this.#options;
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
    const link = this.#links.get(nodeKey);
    if (link === undefined || registry.get(nodeKey) === undefined) {
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
    link.lastHealth = details.data.health;
    const admission = this.#admission;
    // Re-checked on every heartbeat: a model delisted since registration stops being routed.
    const models = admission
      ? details.data.models.filter((id) =>
          admission({ id, digest: link.models.find((model) => model.id === id)?.digest }, message.node),
        )
      : details.data.models;
    const instance = registry.heartbeat(nodeKey, { models });
    if (details.data.capacity >= 1 && details.data.capacity !== instance.declaredCapacity) {
      registry.register({
        id: nodeKey,
        nodeAddress: instance.nodeAddress,
        url: instance.url,
        models,
        declaredCapacity: details.data.capacity,
        benchmarkTokPerSec: instance.benchmarkTokPerSec,
      });
    }
    return instance;
  }

  /** Decode tok/s from the node's signed benchmark record; null when absent, not the node's, or expired. */
  async #benchmarkOf(record: unknown, node: Address): Promise<number | null> {
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
      return signed.message.decodeTokPerSecMilli / 1000;
    } catch (error) {
      this.#options.logger.warn(
        { node, reason: error instanceof GbtError ? error.code : String(error) },
        "ignoring the registration's benchmark record",
      );
      return null;
    }
  }
}
