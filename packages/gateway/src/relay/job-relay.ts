/**
 * The job relay: a managed node's owner can reach its agent through the gateway, for a node that
 * is not reachable from the owner's machine. The gateway is a courier, not an authority:
 *
 * - it forwards the signed Job's exact bytes to the node's `/agent/jobs` with its link token (the
 *   node opens its agent routes to that token only), and returns the node's answer verbatim;
 * - the node verifies the Job as if it came directly (owner, node, chain, window, replay,
 *   allowlist, params), so the gateway can neither forge a job (it holds no owner key) nor alter
 *   one (the signature covers the params' hash);
 * - the outcome carries the node-signed JobResult, so the owner can check the gateway did not
 *   forge the answer either.
 *
 * Before forwarding, the gateway checks the envelope (a Job for this node, on its chain, validly
 * signed, in its time window) and its signer: only the owners the node itself published, signed,
 * in its registration and heartbeats (a node that published none gets no relayed job). Then a
 * token bucket per node (`relay.jobsPerMinute`) bounds what even an owner's key can send. So a
 * stranger's job, garbage or a flood stops here (403 `owner_not_allowed`, 429 `rate_limited` with
 * Retry-After) and the node is never contacted; the node still checks every job itself.
 *
 * Routes: `POST /v1/nodes/:address/jobs`, `GET /v1/nodes/:address/jobs/:id`.
 */
import {
  agentPaths,
  HttpError,
  MAX_JOB_BODY_BYTES,
  MAX_JOB_ID_LENGTH,
  recoverSignerNative,
  verifyObject,
} from "@gbt/protocol";
import { type Context, Hono } from "hono";
import type { Logger } from "pino";
import { type Address, getAddress, isAddress, isAddressEqual } from "viem";
import type { FeatureStarter } from "../gateway-feature.js";
import { readBytes } from "../http/body.js";
import { methodNotAllowed } from "../http/errors.js";
import { named } from "../http/gateway-app.js";
import type { GatewayEnv } from "../http/gateway-env.js";
import type { InstancePool } from "../pool/instance-pool.js";
import type { NodeResponse } from "../pool/node-transport.js";
import type { InstanceLink } from "../pool/pool-instance.js";
import { createNodeJobLimiter } from "./node-job-limiter.js";

/** A relayed answer is a JobResult or a job's status; a node sending more is cut off. */
export const MAX_RELAYED_ANSWER_BYTES = 1024 * 1024;
/** Long enough for the slowest allowlisted job (a benchmark or a model pull). */
export const RELAY_TIMEOUT_MS = 10 * 60_000;
/** Jobs relayed to one node per minute when gateway.json's `relay.jobsPerMinute` does not say. */
export const DEFAULT_RELAY_JOBS_PER_MINUTE = 30;
export const RELAYED_BY_HEADER = "x-gbt-relayed-by";

const JOBS_PATH = "/v1/nodes/:address/jobs";
const JOB_PATH = `${JOBS_PATH}/:jobId`;

/** What the relay uses of the gateway. */
export interface JobRelayPorts {
  chainId: number;
  skewSeconds: number;
  /** The gateway's address, named in the relayed-by header. */
  gateway: Address;
  pool: Pick<InstancePool, "get" | "isStale">;
  logger: Logger;
  now: () => number;
}

export type JobRelay = FeatureStarter<JobRelayPorts>;

export interface JobRelayOptions {
  timeoutMs?: number;
  /** Jobs relayed to one node per minute, and the burst it may take (`relay.jobsPerMinute`). */
  jobsPerMinute?: number;
}

export function createJobRelay(options: JobRelayOptions = {}): JobRelay {
  return {
    name: "job-relay",
    start(ports) {
      const timeoutMs = options.timeoutMs ?? RELAY_TIMEOUT_MS;
      const limiter = createNodeJobLimiter({
        jobsPerMinute: options.jobsPerMinute ?? DEFAULT_RELAY_JOBS_PER_MINUTE,
        now: ports.now,
      });
      const relay = (
        c: Context<GatewayEnv>,
        link: InstanceLink,
        path: string,
        init: { method: "GET" | "POST"; body?: Buffer },
      ) => forward(c, link, path, init, timeoutMs, ports);
      const routes = new Hono<GatewayEnv>()
        // The node's address is checked first (400 invalid_node), whatever the method.
        .use(JOBS_PATH, async (c, next) => {
          nodeAddress(c.req.param("address"));
          await next();
        })
        .use(JOB_PATH, async (c, next) => {
          if (c.req.param("jobId").length > MAX_JOB_ID_LENGTH) return c.notFound();
          nodeAddress(c.req.param("address"));
          await next();
        })
        .post(JOBS_PATH, named("relay_submit"), async (c) => {
          const node = nodeAddress(c.req.param("address"));
          const body = await readBytes(c, MAX_JOB_BODY_BYTES);
          const signer = await checkEnvelope(ports, body, node);
          const link = linkOf(ports, node);
          checkOwner(link, signer);
          // Only owners' jobs spend the node's tokens: a stranger cannot lock its owners out.
          const wait = limiter.take(link.node.toLowerCase());
          if (wait !== null) {
            throw new HttpError("rate_limited", `Node ${node} takes no more relayed jobs for now.`, null, {
              "retry-after": String(wait),
            });
          }
          return relay(c, link, agentPaths.jobs, { method: "POST", body });
        })
        .all(JOBS_PATH, () => {
          throw methodNotAllowed("POST");
        })
        .get(JOB_PATH, named("relay_status"), async (c) => {
          const node = nodeAddress(c.req.param("address"));
          const path = agentPaths.job(c.req.param("jobId"));
          return relay(c, linkOf(ports, node), path, { method: "GET" });
        })
        .all(JOB_PATH, () => {
          throw methodNotAllowed("GET");
        });
      return { routes };
    },
  };
}

function nodeAddress(text: string): `0x${string}` {
  if (!isAddress(text, { strict: false })) {
    throw new HttpError("invalid_node", `${JSON.stringify(text.slice(0, 64))} is not a node address.`);
  }
  return getAddress(text);
}

/** The envelope checks that need no knowledge of the node's owners; returns its proven signer. */
async function checkEnvelope(ports: JobRelayPorts, body: Buffer, node: `0x${string}`): Promise<Address> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpError("invalid_json", "The job is not JSON; send the signed Job.");
  }
  const claimed = (value as { message?: { node?: unknown } } | null)?.message?.node;
  if (
    typeof claimed === "string" &&
    isAddress(claimed, { strict: false }) &&
    !isAddressEqual(claimed, node)
  ) {
    throw new HttpError("wrong_node", `The Job is for node ${claimed}, but was sent to ${node}.`);
  }
  // Throws GbtErrors (signature_invalid, wrong_chain, expired…) that the server maps to 4xx.
  const signed = await verifyObject(value, {
    kind: "Job",
    chainId: ports.chainId,
    audience: node,
    now: ports.now,
    skewSeconds: ports.skewSeconds,
    recoverSigner: recoverSignerNative,
  });
  return signed.message.issuer;
}

/** 403 unless `signer` is one of the owners the node published (none published: nobody is). */
function checkOwner(link: InstanceLink, signer: Address): void {
  if (link.owners.some((owner) => isAddressEqual(owner, signer))) return;
  throw new HttpError(
    "owner_not_allowed",
    link.owners.length === 0
      ? `Node ${link.node} publishes no owners: this gateway relays it no jobs.`
      : `The Job is signed by ${signer}, who is not an owner node ${link.node} published.`,
  );
}

/** The live link of `node`: 404 when it is not registered here, 503 when its heartbeats stopped. */
function linkOf(ports: JobRelayPorts, node: `0x${string}`): InstanceLink {
  // An instance's id is its node's lower-case address.
  const instance = ports.pool.get(node.toLowerCase());
  if (instance !== undefined && !ports.pool.isStale(instance)) return instance.link;
  if (instance !== undefined) {
    throw new HttpError("node_unreachable", `Node ${node} has stopped sending heartbeats.`, null, {
      "retry-after": "10",
    });
  }
  throw new HttpError("unknown_node", `Node ${node} is not registered with this gateway.`);
}

async function forward(
  c: Context<GatewayEnv>,
  link: InstanceLink,
  path: string,
  init: { method: "GET" | "POST"; body?: Buffer },
  timeoutMs: number,
  ports: JobRelayPorts,
): Promise<Response> {
  let response: NodeResponse;
  try {
    // The link's transport: the gateway's URL policy at connect time, no redirects, a byte cap.
    response = await link.transport.request(new URL(path, `${link.url}/`), {
      method: init.method,
      headers: {
        authorization: link.authorization,
        ...(init.body ? { "content-type": "application/json" } : {}),
      },
      ...(init.body ? { body: init.body } : {}),
      timeoutMs,
      maxBytes: MAX_RELAYED_ANSWER_BYTES,
      // The owner hanging up cancels the relayed call too.
      signal: c.req.raw.signal,
    });
  } catch (cause) {
    ports.logger.warn({ node: link.node, err: cause }, "job relay: node unreachable");
    throw new HttpError("node_unreachable", `Node ${link.node} did not answer the relayed job.`);
  }
  if (response.status >= 300 && response.status < 400) {
    // Never followed, never passed on: the Location is the node's to choose.
    ports.logger.warn(
      { node: link.node, status: response.status },
      "job relay: the node answered a redirect",
    );
    throw new HttpError("node_unreachable", `Node ${link.node} did not answer the relayed job.`);
  }
  const type = response.headers["content-type"];
  return c.body(new Uint8Array(response.body), response.status as 200, {
    "content-type": typeof type === "string" ? type : "application/json",
    [RELAYED_BY_HEADER]: ports.gateway,
  });
}
