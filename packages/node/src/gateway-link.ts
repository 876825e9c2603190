/**
 * The node's side of the gateway link: registers with a gateway, heartbeats, and signs a usage
 * receipt for each pooled request. Serving never waits on the gateway: the link runs in the
 * background on one unref'd timer, retries an unreachable gateway with capped backoff, and logs
 * once per change of state rather than once per attempt. Link tokens are held only as hashes and
 * never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import {
  GATEWAY_HEARTBEAT_PATH,
  GATEWAY_INFO_PATH,
  GATEWAY_REGISTER_PATH,
  type GatewayInfo,
  GbtError,
  gatewayInfoSchema,
  type HeartbeatDetails,
  heartbeatDetailsSchema,
  isGbtError,
  LINK_SIGNATURE_TTL_SECONDS,
  MAX_PUBLISHED_OWNERS,
  modelCapabilitiesSchema,
  RECEIPT_TTL_SECONDS,
  type ReceiptTimings,
  type RegistrationDetails,
  type RegistrationResponse,
  registrationDetailsSchema,
  registrationResponseSchema,
  type SignedObject,
  schemas,
  signObject,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { LocalAccount } from "viem";
import type { ModelCapabilities } from "./backends/types.js";

export const DEFAULT_LINK_RETRY_MIN_MS = 1_000;
export const DEFAULT_LINK_RETRY_MAX_MS = 30_000;
export const DEFAULT_LINK_REQUEST_TIMEOUT_MS = 10_000;

export interface GatewayLinkOptions {
  /** Base URL of the gateway (its `/v1/gateway/*` routes hang below it). */
  gatewayUrl: string;
  /** The node key: signs registrations, heartbeats and receipts. */
  account: LocalAccount;
  /** The URL the gateway uses to reach this node. */
  nodeUrl: string;
  /**
   * Requests at once offered to the pool: a number, or what it is now (network mode: 0 outside the
   * schedule, which heartbeats declare so the gateway drains this node; registrations say at least 1).
   */
  capacity: number | (() => number);
  /** The models served, with what the backend can do with each (signed with the registration; absent: chat only). */
  models: () => Promise<Array<{ id: string; digest?: string; capabilities?: ModelCapabilities }>>;
  backend: { kind: string; version?: string };
  inFlight: () => number;
  health: () => Promise<{ ok: boolean; detail?: string }>;
  /** The node's latest signed BenchmarkRecord, or null. */
  latestBenchmark: () => unknown | null;
  /**
   * The addresses allowed to sign this node's jobs, published (signed) with every registration and
   * heartbeat: the gateway relays only their jobs. Default: none (the gateway relays no job).
   */
  owners?: () => readonly string[];
  logger: Logger;
  /** The node's configured chain: the gateway must be on it (else WRONG_CHAIN). */
  chainId?: number;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
  /** Backoff bounds for an unreachable gateway (default 1 s → 30 s); refusals retry at the max. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Per request to the gateway (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * Carries the link's calls instead of HTTP requests to the gateway: the outbound link
   * (link/outbound-link.ts), whose connection also brings the gateway's requests to this node.
   * A new connection means a new registration on it, at once.
   */
  carrier?: LinkCarrier;
  /**
   * `link.mode: auto` on a direct link: the gateway refused the node's URL (it will not or cannot
   * reach it). Called once instead of retrying; the caller joins over the outbound link instead.
   */
  onUrlRefused?: (reason: string) => void;
  /** Ask the gateway to check that it reaches `nodeUrl` before it registers this node (link.mode auto). */
  probe?: boolean;
}

/** What carries the link's calls to the gateway when it is not plain HTTP (the outbound link). */
export interface LinkCarrier {
  /** One call: the gateway's status and JSON, as the HTTP route would answer; LinkFailure when it cannot be made. */
  call(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  /** Called each time a new connection is up: the link registers on it right away. */
  onConnected(listener: () => void): void;
}

/** What the node server knows of a finished pooled request. */
export interface ReceiptInput {
  requestId: string;
  model: string;
  promptTokens: number;
  completionTokens: number;
  ttftMs: number;
  durationMs: number;
  timings: ReceiptTimings;
}

export interface GatewayLink {
  /** Resolves on the first successful registration; rejects only when stopped before it. */
  readonly ready: Promise<RegistrationResponse>;
  /** True for the current link token or the one before it (constant time). */
  isLinkToken(token: string): boolean;
  /** The gateway this node is registered with, or null before the first registration. */
  gateway(): GatewayInfo | null;
  /** Signs a UsageReceipt for the registered gateway; throws when not registered. */
  signReceipt(receipt: ReceiptInput): Promise<SignedObject<"UsageReceipt">>;
  /** Sends a heartbeat now (the capacity offered changed), or registers if it must. */
  refresh(): void;
  /** Stops heartbeats and retries, aborts a request in flight; resolves when nothing is pending. */
  stop(): Promise<void>;
}

/** Why one round with the gateway failed, and how to retry. */
export class LinkFailure extends Error {
  constructor(
    /** "unreachable": back off and warn; "refused": retry slowly and log an error. */
    readonly kind: "unreachable" | "refused",
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const errorBodySchema = schemas.boundedText(1024);

function gatewayError(json: unknown): { code: string | null; message: string | null } {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === "string" ? error.code : null;
  const message = errorBodySchema.safeParse(error?.message);
  return { code, message: message.success ? message.data : null };
}

const hashToken = (token: string) => createHash("sha256").update(token).digest();

function clipText(text: string, max: number): string {
  const clean = Array.from(text, (c) => (schemas.hasControlCharacters(c) ? " " : c)).join("");
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

const modelEntrySchema = registrationDetailsSchema.shape.models.element;

/** Starts the link in the background; the returned handle never throws from the link's own work. */
export function startGatewayLink(options: GatewayLinkOptions): GatewayLink {
  const { account, logger } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const retryMinMs = options.retryMinMs ?? DEFAULT_LINK_RETRY_MIN_MS;
  const retryMaxMs = Math.max(retryMinMs, options.retryMaxMs ?? DEFAULT_LINK_RETRY_MAX_MS);
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_LINK_REQUEST_TIMEOUT_MS;
  const base = options.gatewayUrl.replace(/\/+$/, "");
  const offeredCapacity = () =>
    Math.max(0, Math.floor(typeof options.capacity === "function" ? options.capacity() : options.capacity));

  const stopping = new AbortController();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let cycle: Promise<void> = Promise.resolve();
  let phase: "register" | "heartbeat" = "register";
  let info: GatewayInfo | null = null;
  let registration: RegistrationResponse | null = null;
  /** The models (ids, digests, capabilities) the current registration signed, as canonical text. */
  let registeredModels = "";
  /** The current link token's hash first, then the previous one's. */
  let tokenHashes: Buffer[] = [];
  let lastStamp = 0;
  let failures = 0;
  /** The state last logged, so that a retry loop logs once per change. */
  let logged = "starting";

  let resolveReady!: (value: RegistrationResponse) => void;
  let rejectReady!: (error: unknown) => void;
  const ready = new Promise<RegistrationResponse>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  // A stop before the first registration rejects `ready`; nobody has to listen for it.
  ready.catch(() => undefined);

  /**
   * Registration nonces and heartbeat seqs: millisecond stamps from one counter, so they grow
   * strictly within a run, across restarts (by the clock), and every heartbeat's seq is above the
   * nonce of the registration before it (a gateway may hold both to one floor).
   */
  const nextStamp = () => {
    lastStamp = Math.max(now(), lastStamp + 1);
    return lastStamp;
  };

  async function call(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    if (stopping.signal.aborted) throw new LinkFailure("unreachable", "The gateway link is stopped.");
    if (options.carrier !== undefined) return options.carrier.call(method, path, body);
    const controller = new AbortController();
    const onStop = () => controller.abort(stopping.signal.reason);
    stopping.signal.addEventListener("abort", onStop, { once: true });
    const timeout = setTimeout(() => controller.abort(new Error("timed out")), requestTimeoutMs);
    timeout.unref();
    try {
      const response = await fetchImpl(`${base}${path}`, {
        method,
        headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: controller.signal,
      });
      const text = await response.text();
      let json: unknown = null;
      try {
        json = text === "" ? null : JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: response.status, json };
    } catch (cause) {
      const reason = controller.signal.aborted
        ? String((controller.signal.reason as Error | undefined)?.message ?? "aborted")
        : ((cause as Error & { cause?: { code?: string } }).cause?.code ?? (cause as Error).message);
      throw new LinkFailure("unreachable", `Cannot reach the gateway at ${base} (${reason}).`, {
        gateway: base,
      });
    } finally {
      clearTimeout(timeout);
      stopping.signal.removeEventListener("abort", onStop);
    }
  }

  /** Turns a non-2xx answer into a failure: 5xx is an outage, 4xx a refusal with the gateway's words. */
  function failed(what: string, status: number, json: unknown): LinkFailure {
    const { code, message } = gatewayError(json);
    if (status >= 500 || status === 408 || status === 429) {
      return new LinkFailure("unreachable", `The gateway at ${base} answered ${status} to ${what}.`, {
        gateway: base,
        status,
        code,
      });
    }
    return new LinkFailure(
      "refused",
      `The gateway at ${base} refused ${what} (${status}${code ? ` ${code}` : ""}): ${(message ?? "no message").replace(/\.$/, "")}.`,
      { gateway: base, status, code },
    );
  }

  function publishedOwners(): string[] {
    return (options.owners?.() ?? []).slice(0, MAX_PUBLISHED_OWNERS);
  }

  async function offeredModels(): Promise<RegistrationDetails["models"]> {
    let listed: Array<{ id: string; digest?: string; capabilities?: ModelCapabilities }>;
    try {
      listed = await options.models();
    } catch (cause) {
      throw new LinkFailure("unreachable", `Cannot list the backend's models (${(cause as Error).message}).`);
    }
    const models: RegistrationDetails["models"] = [];
    for (const model of listed) {
      const capabilities =
        model.capabilities === undefined ? undefined : modelCapabilitiesSchema.safeParse(model.capabilities);
      const entry = modelEntrySchema.safeParse({
        id: model.id,
        ...(model.digest ? { digest: model.digest } : {}),
        // Out-of-range figures (a context the schema cannot hold) drop the capabilities, not the model.
        ...(capabilities?.success ? { capabilities: capabilities.data } : {}),
      });
      if (entry.success) models.push(entry.data);
      else {
        const bare = modelEntrySchema.safeParse({
          id: model.id,
          ...(capabilities?.success ? { capabilities: capabilities.data } : {}),
        });
        if (bare.success) models.push(bare.data);
      }
    }
    if (models.length === 0) {
      throw new LinkFailure("refused", "The backend offers no model the gateway can route to.", {
        listed: listed.length,
      });
    }
    return models.slice(0, 256);
  }

  async function register(): Promise<RegistrationResponse> {
    const offered = await offeredModels();
    const infoAnswer = await call("GET", GATEWAY_INFO_PATH);
    if (infoAnswer.status < 200 || infoAnswer.status >= 300) {
      throw failed("the info request", infoAnswer.status, infoAnswer.json);
    }
    const parsedInfo = gatewayInfoSchema.safeParse(infoAnswer.json);
    if (!parsedInfo.success) {
      throw new LinkFailure("refused", `The gateway at ${base} answered an invalid ${GATEWAY_INFO_PATH}.`, {
        issue: parsedInfo.error.issues[0]?.message,
      });
    }
    const gateway = parsedInfo.data;
    if (options.chainId !== undefined && gateway.chainId !== options.chainId) {
      throw new GbtError(
        "WRONG_CHAIN",
        `The gateway at ${base} is on chain ${gateway.chainId}; this node is configured for chain ${options.chainId}.`,
        {
          details: { expected: options.chainId, actual: gateway.chainId },
          hint: "Point the node at a gateway of its chain, or fix node.chainId in the config.",
        },
      );
    }
    const backend: RegistrationDetails["backend"] = {
      kind: options.backend.kind,
      ...(options.backend.version ? { version: clipText(options.backend.version, 64) } : {}),
    };
    const details = registrationDetailsSchema.parse({
      models: offered,
      backend,
      benchmark: options.latestBenchmark() ?? null,
      owners: publishedOwners(),
      ...(options.probe ? { probe: true } : {}),
    });
    const issuedAt = Math.floor(now() / 1000);
    const signed = await signObject(account, {
      kind: "NodeRegistration",
      chainId: gateway.chainId,
      message: {
        node: account.address,
        gateway: gateway.address,
        url: options.nodeUrl,
        // A registration offers at least 1; a closed schedule follows at once as a heartbeat of 0.
        capacity: Math.max(1, offeredCapacity()),
        nonce: nextStamp(),
        issuedAt,
        expiresAt: issuedAt + LINK_SIGNATURE_TTL_SECONDS,
      },
      payload: details,
    });
    const answer = await call("POST", GATEWAY_REGISTER_PATH, signed);
    if (answer.status < 200 || answer.status >= 300)
      throw failed("the registration", answer.status, answer.json);
    const parsed = registrationResponseSchema.safeParse(answer.json);
    if (!parsed.success) {
      throw new LinkFailure("refused", `The gateway at ${base} answered an invalid registration response.`, {
        issue: parsed.error.issues[0]?.message,
      });
    }
    const previous = tokenHashes[0];
    tokenHashes = previous
      ? [hashToken(parsed.data.linkToken), previous]
      : [hashToken(parsed.data.linkToken)];
    info = gateway;
    registration = parsed.data;
    registeredModels = JSON.stringify(offered);
    return parsed.data;
  }

  /** One heartbeat; "unknown_instance" when the gateway wants a new registration. */
  async function heartbeat(gateway: GatewayInfo): Promise<"ok" | "unknown_instance" | "models_changed"> {
    const models = await offeredModels();
    // A heartbeat carries model ids only: a model added, swapped or able to do more is signed
    // again, whole, in a new registration (which replaces the old one at the gateway).
    if (JSON.stringify(models) !== registeredModels) return "models_changed";
    let health: HeartbeatDetails["health"];
    try {
      const checked = await options.health();
      health = { ok: checked.ok, ...(checked.detail ? { detail: clipText(checked.detail, 256) } : {}) };
    } catch (cause) {
      health = { ok: false, detail: clipText(`health check failed: ${(cause as Error).message}`, 256) };
    }
    const details = heartbeatDetailsSchema.parse({
      models: models.map((m) => m.id),
      capacity: offeredCapacity(),
      health,
      owners: publishedOwners(),
    });
    const issuedAt = Math.floor(now() / 1000);
    const signed = await signObject(account, {
      kind: "Heartbeat",
      chainId: gateway.chainId,
      message: {
        node: account.address,
        gateway: gateway.address,
        seq: nextStamp(),
        inFlight: Math.max(0, Math.floor(options.inFlight())),
        issuedAt,
        expiresAt: issuedAt + LINK_SIGNATURE_TTL_SECONDS,
      },
      payload: details,
    });
    const answer = await call("POST", GATEWAY_HEARTBEAT_PATH, signed);
    if (answer.status >= 200 && answer.status < 300) return "ok";
    if (answer.status === 404 && gatewayError(answer.json).code === "unknown_instance")
      return "unknown_instance";
    throw failed("the heartbeat", answer.status, answer.json);
  }

  /** Runs one round and answers the delay before the next. Never throws. */
  async function round(): Promise<number> {
    try {
      if (phase === "register" || !info || !registration) {
        const again = registration !== null;
        const answer = await register();
        if (stopped) return 0;
        failures = 0;
        phase = "heartbeat";
        logged = "linked";
        logger.info(
          {
            gateway: base,
            gatewayAddress: info?.address,
            instanceId: answer.instanceId,
            url: options.nodeUrl,
          },
          again ? "registered again with the gateway" : "registered with the gateway",
        );
        resolveReady(answer);
        return offeredCapacity() === 0 ? 0 : answer.heartbeatIntervalMs;
      }
      const outcome = await heartbeat(info);
      if (outcome === "unknown_instance") {
        phase = "register";
        logger.info({ gateway: base }, "the gateway no longer knows this node; registering again");
        return 0;
      }
      if (outcome === "models_changed") {
        phase = "register";
        logger.info({ gateway: base }, "the models or what they can do changed; registering again");
        return 0;
      }
      failures = 0;
      if (logged !== "linked") {
        logged = "linked";
        logger.info({ gateway: base }, "the gateway answers heartbeats again");
      }
      return registration.heartbeatIntervalMs;
    } catch (error) {
      if (stopped) return 0;
      return recover(error);
    }
  }

  function recover(error: unknown): number {
    // link.mode auto: the gateway will not (URL policy) or cannot (its probe) reach this node's URL.
    if (
      options.onUrlRefused !== undefined &&
      error instanceof LinkFailure &&
      (error.details.code === "invalid_node_url" || error.details.code === "node_unreachable")
    ) {
      const fallback = options.onUrlRefused;
      options.onUrlRefused = undefined;
      stopped = true;
      fallback(error.message);
      return retryMaxMs;
    }
    if (error instanceof LinkFailure && error.kind === "unreachable") {
      if (logged !== "unreachable") {
        logged = "unreachable";
        logger.warn(
          { ...error.details },
          `${error.message} The node keeps serving and retries with backoff.`,
        );
      }
      const delay = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures, 30));
      failures++;
      return delay;
    }
    // A refusal (4xx, wrong chain, bad answer) or a local error: the operator has to act.
    const message = error instanceof Error ? error.message : String(error);
    const state = `refused:${message}`;
    if (logged !== state) {
      logged = state;
      const fields =
        error instanceof LinkFailure
          ? error.details
          : isGbtError(error)
            ? { code: error.code, ...(error.hint ? { hint: error.hint } : {}) }
            : { err: error };
      logger.error(fields, `${message} Retrying every ${Math.round(retryMaxMs / 1000)} s.`);
    }
    // A refused heartbeat may mean a stale registration: the next attempt registers afresh.
    phase = "register";
    return retryMaxMs;
  }

  /** A round asked for while one runs: it follows at once. */
  let kicked = false;
  let running = false;
  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = true;
      cycle = round().then((delay) => {
        running = false;
        const next = kicked ? 0 : delay;
        kicked = false;
        schedule(next);
      });
    }, delayMs);
    timer.unref();
  }
  schedule(0);
  /** Runs a round now (or right after the one running). */
  const kick = () => {
    if (stopped) return;
    if (running) kicked = true;
    else {
      if (timer) clearTimeout(timer);
      schedule(0);
    }
  };
  // A new outbound connection knows nothing of this node yet: register on it now, not at the next beat.
  options.carrier?.onConnected(() => {
    if (stopped) return;
    phase = "register";
    failures = 0;
    kick();
  });

  return {
    ready,
    isLinkToken(token: string): boolean {
      if (tokenHashes.length === 0 || token.length === 0 || token.length > 1024) return false;
      const candidate = hashToken(token);
      let match = false;
      for (const known of tokenHashes) match = timingSafeEqual(candidate, known) || match;
      return match;
    },
    gateway: () => info,
    refresh: kick,
    async signReceipt(receipt: ReceiptInput): Promise<SignedObject<"UsageReceipt">> {
      const gateway = info;
      if (!gateway) {
        throw new GbtError(
          "GATEWAY_UNREACHABLE",
          "Cannot sign a usage receipt: not registered with a gateway.",
        );
      }
      const issuedAt = Math.floor(now() / 1000);
      const uint32 = (value: number) => Math.min(2 ** 32 - 1, Math.max(0, Math.round(value)));
      return signObject(account, {
        kind: "UsageReceipt",
        chainId: gateway.chainId,
        message: {
          requestId: receipt.requestId,
          node: account.address,
          gateway: gateway.address,
          model: receipt.model,
          promptTokens: uint32(receipt.promptTokens),
          completionTokens: uint32(receipt.completionTokens),
          ttftMs: uint32(receipt.ttftMs),
          durationMs: uint32(receipt.durationMs),
          issuedAt,
          expiresAt: issuedAt + RECEIPT_TTL_SECONDS,
        },
        payload: receipt.timings,
      });
    },
    async stop(): Promise<void> {
      if (!stopped) {
        stopped = true;
        if (timer) clearTimeout(timer);
        timer = undefined;
        stopping.abort(new Error("link stopped"));
        rejectReady(new GbtError("INTERRUPTED", "The gateway link was stopped before it registered."));
      }
      await cycle;
    },
  };
}
