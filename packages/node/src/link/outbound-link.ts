/**
 * The node's end of the outbound link (the protocol is in @gbt/protocol's gateway-link.ts): for a
 * node the gateway cannot connect to (behind NAT or carrier-grade NAT, no open port, a firewall).
 * The node dials the gateway, checks the gateway's signed LinkAccept against the address it
 * expects (given, or pinned on first use) before it sends anything, then serves HTTP/2 on the
 * connection it dialled: the gateway's CONNECT streams go to the node's own HTTP server (the same
 * routes, link-token checks and receipts as a direct connection) and its control stream carries
 * the gateway link's registration and heartbeats (gateway-link.ts, through `call`).
 *
 * A lost connection is redialled with full-jitter backoff (250 ms doubling to 15 s, reset once a
 * connection has lasted); each new connection registers again at once. Pings both ways find a
 * connection that died without a FIN (a NAT that dropped its mapping).
 */
import { randomBytes } from "node:crypto";
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import {
  type IncomingHttpHeaders as Http2Headers,
  constants as h2,
  performServerHandshake,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  asHttpConnection,
  GATEWAY_INFO_PATH,
  GATEWAY_LINK_PATH,
  type GatewayInfo,
  GbtError,
  gatewayInfoSchema,
  LINK_ACCEPT_HEADER,
  LINK_CHALLENGE_HEADER,
  LINK_CONTROL_PATH,
  LINK_INFO_HEADER,
  LINK_NODE_HEADER,
  LINK_TUNNEL_AUTHORITY,
  LINK_UPGRADE_PROTOCOL,
  linkControlReplySchema,
  readControlMessages,
  recoverSignerNative,
  verifyObject,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Address, LocalAccount } from "viem";
import { type LinkCarrier, LinkFailure } from "../gateway-link.js";

export const DEFAULT_DIAL_MIN_MS = 250;
export const DEFAULT_DIAL_MAX_MS = 15_000;

/** Where the gateway address this node trusts comes from, and where a first-use pin is kept. */
export interface GatewayPin {
  /** The address given (`--gateway-address`, config `link.gatewayAddress`): only it is accepted. */
  expected?: Address;
  /** The address pinned on first use for this gateway URL, or null. */
  load(): Promise<Address | null>;
  save(address: Address): Promise<void>;
}

export interface OutboundLinkOptions {
  gatewayUrl: string;
  account: LocalAccount;
  /** The node's chain: the gateway's LinkAccept must be signed for it. */
  chainId: number;
  pin: GatewayPin;
  /** Hands one tunnelled connection (a CONNECT stream) to the node's HTTP server. */
  accept(connection: Duplex): void;
  logger: Logger;
  dialMinMs?: number;
  dialMaxMs?: number;
  /** Per control call (default 10 s). */
  callTimeoutMs?: number;
  /** A PING unanswered this long closes the connection (default 15 s). */
  pingTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface OutboundLink extends LinkCarrier {
  /** Whether a connection is up and its gateway checked. */
  connected(): boolean;
  /** The gateway at the other end (after the first handshake). */
  gateway(): GatewayInfo | null;
  /** Stops redialling; the connection is closed after `graceMs` (its streams may finish). */
  stop(graceMs?: number): Promise<void>;
}

interface Pending {
  resolve(value: { status: number; json: unknown }): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/** One dialled connection, its HTTP/2 session, and its control stream. */
interface Connection {
  socket: Socket;
  session: ServerHttp2Session;
  info: GatewayInfo;
  control: ServerHttp2Stream | null;
  openedAt: number;
}

export function startOutboundLink(options: OutboundLinkOptions): OutboundLink {
  const { account, logger, pin } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const dialMinMs = options.dialMinMs ?? DEFAULT_DIAL_MIN_MS;
  const dialMaxMs = Math.max(dialMinMs, options.dialMaxMs ?? DEFAULT_DIAL_MAX_MS);
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 15_000;
  const base = options.gatewayUrl.replace(/\/+$/, "");
  const listeners: Array<() => void> = [];
  const pending = new Map<number, Pending>();
  let nextId = 1;
  /** CONNECT streams open now. */
  let tunnels = 0;
  let current: Connection | null = null;
  let lastInfo: GatewayInfo | null = null;
  let stopped = false;
  let attempts = 0;
  let dialTimer: NodeJS.Timeout | undefined;
  let dialing: ClientRequest | null = null;
  /** The state last logged, so that a redial loop logs once per change. */
  let logged = "";

  const logOnce = (state: string, level: "info" | "warn" | "error", fields: object, message: string) => {
    if (logged === state) return;
    logged = state;
    logger[level](fields, message);
  };

  function failPending(reason: string): void {
    for (const [id, call] of pending) {
      clearTimeout(call.timer);
      pending.delete(id);
      call.reject(
        new LinkFailure("unreachable", `The outbound link to ${base} closed (${reason}).`, { gateway: base }),
      );
    }
  }

  function scheduleDial(refused: boolean): void {
    if (stopped || dialTimer !== undefined) return;
    // Full jitter: a gateway restart does not bring every node back in the same millisecond.
    const ceiling = refused ? dialMaxMs : Math.min(dialMaxMs, dialMinMs * 2 ** Math.min(attempts, 20));
    const delay = refused ? dialMaxMs : Math.floor(random() * ceiling);
    attempts += 1;
    dialTimer = setTimeout(() => {
      dialTimer = undefined;
      dial();
    }, delay);
    dialTimer.unref();
  }

  function dial(): void {
    if (stopped) return;
    const challenge = `0x${randomBytes(32).toString("hex")}` as const;
    const url = new URL(GATEWAY_LINK_PATH, `${base}/`);
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
      method: "GET",
      agent: false,
      headers: {
        connection: "Upgrade",
        upgrade: LINK_UPGRADE_PROTOCOL,
        [LINK_NODE_HEADER]: account.address,
        [LINK_CHALLENGE_HEADER]: challenge,
      },
      timeout: callTimeoutMs,
    });
    dialing = request;
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", (error: NodeJS.ErrnoException) => {
      dialing = null;
      logOnce(
        "unreachable",
        "warn",
        { gateway: base, reason: error.code ?? error.message },
        `Cannot open the outbound link to ${base} (${error.code ?? error.message}). The node keeps serving locally and redials with backoff.`,
      );
      scheduleDial(false);
    });
    request.on("response", (response: IncomingMessage) => {
      dialing = null;
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => {
        if (chunks.length < 16) chunks.push(chunk);
      });
      response.on("end", () => {
        const status = response.statusCode ?? 0;
        let message = "";
        try {
          message = String(JSON.parse(Buffer.concat(chunks).toString("utf8"))?.error?.message ?? "").slice(
            0,
            300,
          );
        } catch {
          // not JSON
        }
        const refused = status >= 400 && status < 500;
        logOnce(
          `status:${status}`,
          refused ? "error" : "warn",
          { gateway: base, status },
          status === 404
            ? `The gateway at ${base} does not take outbound links (404): it is older than this node, or the URL is wrong. Give the node a public URL (--public-url) or upgrade the gateway.`
            : `The gateway at ${base} refused the outbound link (${status}${message ? `: ${message}` : ""}).`,
        );
        scheduleDial(refused);
      });
      response.on("error", () => scheduleDial(false));
    });
    request.on("upgrade", (response: IncomingMessage, socket: Socket, head: Buffer) => {
      dialing = null;
      handshake(response, socket, head, challenge).catch((error: unknown) => {
        socket.destroy();
        const refusal = error instanceof GbtError;
        logOnce(
          `handshake:${(error as Error).message}`,
          refusal ? "error" : "warn",
          refusal ? { code: error.code, ...(error.hint ? { hint: error.hint } : {}) } : { err: error },
          `${(error as Error).message} Redialling${refusal ? ` every ${Math.round(dialMaxMs / 1000)} s` : ""}.`,
        );
        scheduleDial(refusal);
      });
    });
    request.end();
  }

  async function handshake(
    response: IncomingMessage,
    socket: Socket,
    head: Buffer,
    challenge: `0x${string}`,
  ) {
    const header = (name: string) => {
      const value = response.headers[name];
      if (typeof value !== "string" || value.length > 16_384) {
        throw new GbtError(
          "INVALID_OBJECT",
          `The gateway at ${base} opened the link without a valid ${name} header.`,
        );
      }
      try {
        return JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as unknown;
      } catch {
        throw new GbtError("INVALID_OBJECT", `The gateway at ${base} sent a malformed ${name} header.`);
      }
    };
    const info = gatewayInfoSchema.safeParse(header(LINK_INFO_HEADER));
    if (!info.success)
      throw new GbtError("INVALID_OBJECT", `The gateway at ${base} sent an invalid ${LINK_INFO_HEADER}.`);
    if (info.data.chainId !== options.chainId) {
      throw new GbtError(
        "WRONG_CHAIN",
        `The gateway at ${base} is on chain ${info.data.chainId}; this node is configured for chain ${options.chainId}.`,
        { hint: "Point the node at a gateway of its chain, or fix node.chainId in the config." },
      );
    }
    const pinned = pin.expected ?? (await pin.load());
    const signer = pinned ?? info.data.address;
    // The gateway proves its key over this connection's fresh challenge: a replayed or relayed answer fails here.
    const accepted = await verifyObject(header(LINK_ACCEPT_HEADER), {
      recoverSigner: recoverSignerNative,
      kind: "LinkAccept",
      chainId: options.chainId,
      audience: account.address,
      allowedSigners: [signer],
      skewSeconds: 120,
      now,
    }).catch((error: unknown) => {
      if (error instanceof GbtError && error.code === "UNKNOWN_SIGNER" && pinned !== null) {
        throw new GbtError(
          "UNKNOWN_SIGNER",
          `The gateway at ${base} signs as ${info.data.address}, not the ${pin.expected ? "expected" : "pinned"} ${pinned}: refusing the link.`,
          {
            hint: pin.expected
              ? "Check --gateway-address (config link.gatewayAddress) against the gateway operator's published address."
              : "If the gateway's key really changed, remove the pin (gateway-pins.json in the node's config dir) or give --gateway-address.",
          },
        );
      }
      throw error;
    });
    if (
      accepted.message.challenge !== challenge ||
      accepted.message.gateway.toLowerCase() !== info.data.address.toLowerCase()
    ) {
      throw new GbtError("SIGNATURE_INVALID", `The gateway at ${base} answered another link's challenge.`);
    }
    if (pinned === null) {
      await pin.save(info.data.address);
      logger.info(
        { gateway: base, gatewayAddress: info.data.address },
        `pinned the gateway's address ${info.data.address} on first use; later links must be signed by it (set --gateway-address to give it instead)`,
      );
    }
    if (stopped) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    if (head.length > 0) socket.unshift(head);
    const session = performServerHandshake(socket, {
      settings: { initialWindowSize: 1 << 20, enablePush: false },
      maxSessionMemory: 64,
    });
    const connection: Connection = { socket, session, info: info.data, control: null, openedAt: now() };
    current = connection;
    lastInfo = info.data;
    session.on("connect", () => {
      try {
        session.setLocalWindowSize(32 << 20);
      } catch {
        // closed meanwhile
      }
    });
    session.on("stream", (stream, headers) => onStream(connection, stream, headers));
    session.on("error", () => undefined);
    socket.on("error", () => undefined);
    const pinger = setInterval(
      () => {
        if (session.closed || session.destroyed) return;
        const timer = setTimeout(
          () => session.destroy(new Error("the gateway stopped answering pings")),
          pingTimeoutMs,
        );
        timer.unref();
        try {
          session.ping((error) => {
            clearTimeout(timer);
            if (error) session.destroy();
          });
        } catch {
          clearTimeout(timer);
        }
      },
      Math.max(100, Math.floor(pingTimeoutMs / 3)),
    );
    pinger.unref();
    const closed = (reason: string) => {
      clearInterval(pinger);
      if (current !== connection) return;
      current = null;
      failPending(reason);
      if (!socket.destroyed) socket.destroy();
      if (stopped) return;
      // A connection that lasted is not a failing gateway: the next one is dialled at once.
      if (now() - connection.openedAt > 5_000) attempts = 0;
      logOnce(
        "lost",
        "warn",
        { gateway: base, reason },
        `The outbound link to ${base} was lost (${reason}); redialling.`,
      );
      scheduleDial(false);
    };
    session.on("close", () => closed("connection closed"));
    session.on("goaway", () => {
      // The gateway is going away: new streams will not come; dial again (it may be back).
      closed("the gateway sent GOAWAY");
    });
    socket.on("close", () => closed("connection closed"));
  }

  function onStream(connection: Connection, stream: ServerHttp2Stream, headers: Http2Headers): void {
    stream.on("error", () => undefined);
    const method = headers[h2.HTTP2_HEADER_METHOD];
    if (method === "CONNECT" && headers[h2.HTTP2_HEADER_AUTHORITY] === LINK_TUNNEL_AUTHORITY) {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
      tunnels += 1;
      stream.once("close", () => {
        tunnels -= 1;
      });
      options.accept(asHttpConnection(stream));
      return;
    }
    if (method === "POST" && headers[h2.HTTP2_HEADER_PATH] === LINK_CONTROL_PATH) {
      if (connection.control !== null) {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 409 }, { endStream: true });
        return;
      }
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, "content-type": "application/x-ndjson" });
      connection.control = stream;
      readReplies(connection, stream);
      logOnce(
        "connected",
        "info",
        { gateway: base, gatewayAddress: connection.info.address },
        "outbound link to the gateway is up",
      );
      for (const listener of listeners) listener();
      return;
    }
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: 404 }, { endStream: true });
  }

  function readReplies(connection: Connection, stream: ServerHttp2Stream): void {
    readControlMessages(
      stream,
      linkControlReplySchema,
      (reply) => {
        const call = pending.get(reply.id);
        if (call === undefined) return;
        pending.delete(reply.id);
        clearTimeout(call.timer);
        call.resolve({ status: reply.status, json: reply.body });
      },
      () => connection.session.destroy(),
    );
    stream.on("close", () => {
      if (current === connection) connection.session.destroy();
    });
  }

  dial();

  return {
    async call(method, path, body) {
      const connection = current;
      if (connection === null || connection.control === null) {
        throw new LinkFailure("unreachable", `The outbound link to ${base} is not up.`, { gateway: base });
      }
      if (method === "GET" && path === GATEWAY_INFO_PATH) return { status: 200, json: connection.info };
      const op = path.endsWith("/register") ? "register" : path.endsWith("/heartbeat") ? "heartbeat" : null;
      if (op === null)
        throw new LinkFailure("refused", `The outbound link does not carry ${method} ${path}.`);
      const id = nextId;
      nextId = nextId >= 2 ** 32 - 1 ? 1 : nextId + 1;
      const control = connection.control;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(
            new LinkFailure(
              "unreachable",
              `The gateway at ${base} did not answer the ${op} within ${callTimeoutMs} ms.`,
            ),
          );
        }, callTimeoutMs);
        timer.unref();
        pending.set(id, { resolve, reject, timer });
        control.write(`${JSON.stringify({ id, op, body })}\n`);
      });
    },
    onConnected(listener) {
      listeners.push(listener);
    },
    connected: () => current?.control != null,
    gateway: () => lastInfo,
    async stop(graceMs = 2_000) {
      stopped = true;
      if (dialTimer) clearTimeout(dialTimer);
      dialTimer = undefined;
      dialing?.destroy();
      const connection = current;
      if (connection === null) return;
      connection.control?.end();
      const until = Date.now() + graceMs;
      // In-flight streams (answers still going out) may finish; then the connection goes.
      while (Date.now() < until && tunnels > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      current = null;
      failPending("stopped");
      connection.session.close();
      connection.socket.end();
      setTimeout(() => connection.socket.destroy(), 500).unref();
    },
  };
}
