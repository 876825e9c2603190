/**
 * The gateway's config file (`gateway.json` in the config dir), validated on every load. Every
 * field has a default, so a gateway runs with no file at all; a present file is strict: an unknown
 * or bad field names itself and exits with the config code.
 */
import { DEFAULT_SERVER_GUARD, GbtError, schemas } from "@gbt/protocol";
import { readJsonFile } from "@gbt/store";
import { z } from "zod";
import { priceTableSchema } from "./billing/pricing.js";
import { limitsConfigSchema } from "./limits/limit-store.js";
import { gbtToWei } from "./pool/stake-gate.js";
import { verificationConfigSchema } from "./verification/verification-config.js";

const DAY_MS = 86_400_000;

export const gatewayConfigSchema = z.strictObject({
  host: z.string().min(1).max(255).default("127.0.0.1"),
  port: z.number().int().min(0).max(65_535).default(8080),
  /** EIP-712 chain id that nodes sign registrations, heartbeats and receipts for. */
  chainId: schemas.chainId.default(31_337),
  /** Credits per million tokens, per model; "*" is the default for every other model. */
  prices: priceTableSchema.default({ "*": { inputPerMillion: 0.1, outputPerMillion: 0.4 } }),
  /** Share of a request's debit credited to the node that served it (the rest is the platform's). */
  providerShare: z.number().min(0).max(1).default(0.8),
  /** Bounty multiplier on the provider share while a model has fewer active instances than `minInstances`. */
  bounty: z
    .strictObject({
      multiplier: z.number().min(1).max(1.25).default(1.2),
      minInstances: z.number().int().min(0).default(2),
    })
    .default({ multiplier: 1.2, minInstances: 2 }),
  /** Completion tokens reserved for a request without `max_tokens`. */
  defaultMaxTokens: z.number().int().min(1).max(1_048_576).default(4096),
  routing: z
    .strictObject({
      heartbeatIntervalMs: z.number().int().min(100).max(600_000).default(10_000),
      missedHeartbeats: z.number().int().min(1).max(100).default(3),
      minTokPerSec: z.number().min(0).default(5),
      rampUpDays: z.number().min(0).max(365).default(7),
      rampUpStartFactor: z.number().min(0).max(1).default(0.25),
      /** A stream with no chunk for this long is a failure (and ends with an error event). */
      stallTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
      /** A node that sends no response headers for this long is a failure (retried elsewhere). */
      firstByteTimeoutMs: z.number().int().min(100).max(600_000).default(120_000),
      /** After the headers, a whole (non-streamed) answer must be complete within this. */
      responseTimeoutMs: z.number().int().min(100).max(3_600_000).default(600_000),
      /** The longest a stream may last, however steadily it flows. */
      streamTimeoutMs: z.number().int().min(100).max(86_400_000).default(3_600_000),
      /** The largest whole answer read from a node (bigger: a failure for the node). */
      maxResponseBytes: z
        .number()
        .int()
        .min(1024)
        .max(1_073_741_824)
        .default(8 * 1024 * 1024),
      /** The largest single SSE event a node may send. */
      maxEventBytes: z
        .number()
        .int()
        .min(1024)
        .max(268_435_456)
        .default(1024 * 1024),
      /** Other candidates tried when a node fails before the first byte. */
      maxRetries: z.number().int().min(0).max(5).default(2),
      /** How long a request waits for a free slot when every node is at capacity (then 503). */
      queueTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
      /** When every instance of a model is parked, route to them anyway rather than fail (Envoy's panic mode). */
      panicMode: z.boolean().default(true),
      /** The most requests at once any node may claim (also bounded by its signed benchmark). */
      maxCapacity: z.number().int().min(1).max(65_536).default(256),
      /** Requests allowed to wait at once; more get 503 at once. */
      maxQueued: z.number().int().min(0).max(100_000).default(1024),
      /**
       * The least active stake (whole GBT in NodeStaking, a number or a decimal string) a node must
       * hold to register; below it, 403 `insufficient_stake`. Read from the chain of the settlement
       * section (`settlement.rpcUrl`, `settlement.staking`) at each registration; a chain that
       * cannot be read admits nobody (503 `stake_unavailable`). 0 (default): no check, no chain read.
       */
      minStakeGbt: z
        .union([
          z.number().min(0).max(1e15),
          z.string().regex(/^\d{1,15}(\.\d{1,18})?$/, 'must be a decimal amount of GBT (e.g. "12.5")'),
        ])
        .default(0),
    })
    .default({
      heartbeatIntervalMs: 10_000,
      missedHeartbeats: 3,
      minTokPerSec: 5,
      rampUpDays: 7,
      rampUpStartFactor: 0.25,
      stallTimeoutMs: 30_000,
      firstByteTimeoutMs: 120_000,
      responseTimeoutMs: 600_000,
      streamTimeoutMs: 3_600_000,
      maxResponseBytes: 8 * 1024 * 1024,
      maxEventBytes: 1024 * 1024,
      maxRetries: 2,
      queueTimeoutMs: 10_000,
      panicMode: true,
      maxCapacity: 256,
      maxQueued: 1024,
      minStakeGbt: 0,
    }),
  /**
   * Admit nodes on loopback, private (RFC 1918, IPv6 ULA) and CGNAT addresses. Off by default: on
   * an open network a node's URL is an attacker's input, and a private one reaches the gateway's
   * own network. `gbt up` and a LAN-only pool set it; link-local and metadata addresses stay
   * refused even then.
   */
  allowPrivateNodes: z.boolean().default(false),
  /**
   * Limits at the door: requests and tokens per minute, concurrent requests, and (accounts) a spend
   * budget per day or month; `perKey`/`perAccount` for everyone, `keys`/`accounts` by id. The admin
   * API (`PUT /v1/gateway/limits/{keys,accounts}/:id`, `gbt gateway limits`) overrides them.
   */
  limits: limitsConfigSchema,
  /** Socket limits of the gateway's HTTP server (see protocol's server-guard.ts). */
  server: z
    .strictObject({
      headersTimeoutMs: z.number().int().min(100).max(600_000).default(DEFAULT_SERVER_GUARD.headersTimeoutMs),
      requestTimeoutMs: z
        .number()
        .int()
        .min(100)
        .max(3_600_000)
        .default(DEFAULT_SERVER_GUARD.requestTimeoutMs),
      idleTimeoutMs: z.number().int().min(100).max(3_600_000).default(DEFAULT_SERVER_GUARD.idleTimeoutMs),
      keepAliveTimeoutMs: z
        .number()
        .int()
        .min(100)
        .max(3_600_000)
        .default(DEFAULT_SERVER_GUARD.keepAliveTimeoutMs),
      maxConnections: z.number().int().min(1).max(1_000_000).default(DEFAULT_SERVER_GUARD.maxConnections),
      maxConnectionsPerIp: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(DEFAULT_SERVER_GUARD.maxConnectionsPerIp),
      /** Requests per minute from one address to the routes that need no API key (register, heartbeat, relay). */
      unauthenticatedPerIpPerMinute: z.number().int().min(1).max(1_000_000).default(600),
    })
    .default({ ...DEFAULT_SERVER_GUARD, unauthenticatedPerIpPerMinute: 600 }),
  /** Accepted clock skew of signed link objects, seconds. */
  skewSeconds: z.number().int().min(0).max(600).default(30),
  /** The job relay (`/v1/nodes/:node/jobs`): owners' signed jobs carried to a node's agent. */
  relay: z
    .strictObject({
      /** Jobs relayed to one node per minute, and the burst it may take; more get 429 with Retry-After. */
      jobsPerMinute: z.number().int().min(1).max(10_000).default(30),
    })
    .default({ jobsPerMinute: 30 }),
  /** The model registry (signed manifests from publishers). */
  registry: z
    .strictObject({
      /** Nodes may register and serve only models with an approved manifest (by name, and by sha256 when reported). */
      requireApproved: z.boolean().default(false),
      /** Publishers allowed to submit manifests (addresses); absent: any publisher may submit (as pending). */
      publishers: z.array(schemas.address).max(10_000).optional(),
    })
    .default({ requireApproved: false }),
  /** Verification and reputation: canaries, redundant sampling, throughput challenges, trust tiers (see src/verification). */
  verification: verificationConfigSchema,
  /**
   * Settlement on chain (off when absent): each epoch the gateway posts the Merkle root of every
   * node's cumulative earnings to the Settlement contract, signing with the settler key (the
   * settler role: `settlerKeyFile`, else the gateway key). `gbt chain dev` writes this section.
   */
  settlement: z
    .strictObject({
      rpcUrl: z
        .string()
        .max(512)
        .regex(/^https?:\/\/\S+$/, "must be an http:// or https:// URL"),
      chainId: z.number().int().positive(),
      /** The Settlement contract's address. */
      contract: z.string().regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address"),
      /** The NodeStaking contract's address: where `routing.minStakeGbt` reads a node's stake. */
      staking: z
        .string()
        .regex(/^0x[0-9a-fA-F]{40}$/, "must be a 0x-prefixed 20-byte address")
        .optional(),
      /** Seconds between epochs. */
      epochSeconds: z
        .number()
        .int()
        .min(1)
        .max(30 * 86_400)
        .default(3600),
      /** GBT wei paid per micro-credit earned (default 10^12: one GBT per credit). */
      weiPerMicroCredit: z
        .string()
        .regex(/^[0-9]{1,30}$/, "must be a decimal integer")
        .default("1000000000000"),
      /**
       * A gbt keystore with a settler key of its own, so the hot link key need not hold the settler
       * role (absolute path; passphrase from GBT_SETTLER_PASSPHRASE). Absent: the gateway key.
       */
      settlerKeyFile: z.string().max(4096).regex(/^\//, "must be an absolute path").optional(),
    })
    .optional(),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;

export const DAY = DAY_MS;

/** Parses a config object (defaults filled in); CONFIG_INVALID naming the field otherwise. */
export function parseGatewayConfig(value: unknown, source = "gateway config"): GatewayConfig {
  const parsed = gatewayConfigSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") || "(root)";
    throw new GbtError("CONFIG_INVALID", `${source}: ${path}: ${issue?.message ?? "invalid"}.`, {
      details: { source, path, issues: parsed.error.issues.slice(0, 5) },
      hint: "Fix the field (see the README's gateway section), or remove the file to use the defaults.",
    });
  }
  const config = parsed.data;
  // A minimum stake with no chain to read it from would admit nobody, or (worse) be skipped.
  if (gbtToWei(config.routing.minStakeGbt) > 0n && config.settlement?.staking === undefined) {
    throw new GbtError(
      "CONFIG_INVALID",
      `${source}: routing.minStakeGbt is ${config.routing.minStakeGbt}, but the config names no NodeStaking contract to read stakes from.`,
      {
        details: { source, path: "routing.minStakeGbt", needs: "settlement.staking" },
        hint: "Add settlement.rpcUrl and settlement.staking (the NodeStaking address; `gbt chain dev` prints it), or set routing.minStakeGbt to 0.",
      },
    );
  }
  return config;
}

/** Loads `gateway.json`; the defaults when the file does not exist. */
export async function loadGatewayConfig(path: string): Promise<GatewayConfig> {
  // Read as JSON by the one reader; the fields are checked (with their own messages) by parseGatewayConfig.
  const json = await readJsonFile(path, z.unknown(), {
    what: "The gateway config",
    hint: "Fix the file, or remove it to use the defaults.",
  });
  return parseGatewayConfig(json === undefined ? {} : json, path);
}
