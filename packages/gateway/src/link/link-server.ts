/**
 * The gateway's end of outbound links (the protocol is in @gbt/protocol's gateway-link.ts): a node
 * that cannot be connected to dials `GET /v1/gateway/link`, the gateway answers 101 with a signed
 * LinkAccept over the node's challenge, and the connection becomes an HTTP/2 session on which the
 * gateway is the client. Its control stream carries the node's signed registration and heartbeats
 * to the same registrar as the HTTP routes; every request to the node is a CONNECT stream (see
 * link-channel.ts). Nothing about the node is believed before its signed registration arrives on
 * the control stream, and a link that has not registered within `registerTimeoutMs` is closed.
 *
 * One live link per node: a registration accepted on a new link swaps the instance's channel in
 * the same step (pool.register) and closes the old connection. A lost link leaves its instance in
 * the pool but unroutable (as a node that stopped heartbeating), so that a reconnect within
 * seconds keeps its ramp-up, breaker and health history; requests on the lost connection fail the
 * usual way (before their first byte: another node; mid-stream: the error event).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants as h2,
  connect as h2connect,
} from "node:http2";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  errorBody,
  GATEWAY_LINK_PATH,
  type GatewayInfo,
  HttpError,
  httpError,
  isGbtError,
  LINK_ACCEPT_HEADER,
  LINK_ACCEPT_TTL_SECONDS,
  LINK_CHALLENGE_HEADER,
  LINK_CONTROL_PATH,
  LINK_INFO_HEADER,
  LINK_NODE_HEADER,
  LINK_UPGRADE_PROTOCOL,
  type LinkControlReply,
  type LinkControlRequest,
  linkControlRequestSchema,
  readControlMessages,
  schemas,
  signObject,
  toHttpError,
} from "@gbt/protocol";
import type { Logger } from "pino";
import type { Address, LocalAccount } from "viem";
import type { InstancePool } from "../pool/instance-pool.js";
import type { NodeRegistrar } from "../pool/node-registrar.js";
import { LINK_INSTANCE_ORIGIN, LinkChannel } from "./link-channel.js";

export interface LinkServerOptions {
  registrar: NodeRegistrar;
  pool: InstancePool;
  account: LocalAccount;
  chainId: number;
  logger: Logger;
  now?: () => number;
  /** A link must register within this long (default 10 s). */
  registerTimeoutMs?: number;
  /** A PING unanswered this long closes the link (default 15 s; pings every third of it). */
  pingTimeoutMs?: number;
  /** Links at once (default 10 000); handshakes still registering, per remote address (default 8). */
  maxLinks?: number;
  maxPendingPerAddress?: number;
  /** Whether the gateway takes new links (false while it shuts down). */
  accepting?: () => boolean;
}

export interface LinkServer {
  /** The links now, by node (lower-case address). */
  readonly size: number;
  /** Whether the node is reached over a live link now. */
  linked(node: string): boolean;
  /** Closes every link (gateway shutdown): a GOAWAY, then the connections after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** Window sizes: 128 streams of a chat answer each must flow without waiting on WINDOW_UPDATEs. */
const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 32 << 20;

/** Handles `upgrade` on the gateway's HTTP server: outbound links on their path, 404 for any other. */
export function attachLinkServer(server: Server, options: LinkServerOptions): LinkServer {
  const { registrar, pool, account, chainId, logger } = options;
  const now = options.now ?? Date.now;
  const registerTimeoutMs = options.registerTimeoutMs ?? 10_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 15_000;
  const maxLinks = options.maxLinks ?? 10_000;
  const maxPendingPerAddress = options.maxPendingPerAddress ?? 8;
  /** The registered link of each node. */
  const current = new Map<string, Link>();
  /** Every open link, registered or not. */
  const open = new Set<Link>();
  const pendingByAddress = new Map<string, number>();

  class Link {
    readonly id = randomUUID();
    readonly channel: LinkChannel;
    nodeKey: string | null = null;
    closed = false;
    readonly #session: ClientHttp2Session;
    readonly #socket: Socket;
    readonly #claimedNode: Address;
    readonly #remote: string;
    #pending = true;
    #control: ClientHttp2Stream | null = null;
    readonly #timers: NodeJS.Timeout[] = [];

    constructor(socket: Socket, session: ClientHttp2Session, claimedNode: Address, remote: string) {
      this.#socket = socket;
      this.#session = session;
      this.#claimedNode = claimedNode;
      this.#remote = remote;
      this.channel = new LinkChannel(session);
      session.on("close", () => this.#closed("connection closed"));
      session.on("error", (error) => this.#closed(`session error: ${(error as Error).message}`));
      session.on("goaway", () => this.#closed("the node sent GOAWAY"));
      socket.on("error", () => undefined);
      // The HTTP server's sockets allow half-open connections: a node's FIN must end its link now,
      // not when the pings give up (requests routed to it meanwhile would wait for their timeout).
      socket.on("end", () => this.close("the node closed the connection"));
      socket.on("close", () => this.close("connection closed"));
      const registerBy = setTimeout(() => {
        if (this.nodeKey === null) this.close("did not register in time");
      }, registerTimeoutMs);
      registerBy.unref();
      this.#timers.push(registerBy);
      const pinger = setInterval(() => this.#ping(), Math.max(100, Math.floor(pingTimeoutMs / 3)));
      pinger.unref();
      this.#timers.push(pinger);
      this.#openControl();
    }

    #ping(): void {
      if (this.closed) return;
      const timer = setTimeout(() => this.close("the node stopped answering pings"), pingTimeoutMs);
      timer.unref();
      try {
        this.#session.ping((error) => {
          clearTimeout(timer);
          if (error && !this.closed) this.close(`ping failed: ${error.message}`);
        });
      } catch {
        clearTimeout(timer);
        this.close("ping failed");
      }
    }

    #openControl(): void {
      const control = this.#session.request(
        {
          [h2.HTTP2_HEADER_METHOD]: "POST",
          [h2.HTTP2_HEADER_PATH]: LINK_CONTROL_PATH,
          "content-type": "application/x-ndjson",
        },
        { endStream: false },
      );
      this.#control = control;
      control.on("response", (headers) => {
        const status = Number(headers[h2.HTTP2_HEADER_STATUS]);
        if (status !== 200) this.close(`control stream answered ${status}`);
      });
      readControlMessages(
        control,
        linkControlRequestSchema,
        (message) => void this.#handle(message),
        (reason) => this.close(reason),
      );
      control.on("error", () => this.close("control stream failed"));
      control.on("close", () => this.close("control stream closed"));
    }

    async #handle({ id, op, body }: LinkControlRequest): Promise<void> {
      let reply: LinkControlReply;
      try {
        reply = {
          id,
          status: 200,
          body: op === "register" ? await this.#register(body) : await this.#heartbeat(body),
        };
      } catch (error) {
        const http =
          op === "heartbeat" && isGbtError(error, "NOT_FOUND")
            ? httpError("unknown_instance", error.message)
            : toHttpError(error, "gateway", "gateway link");
        reply = { id, status: http.status, body: errorBody(http) };
      }
      if (!this.closed) this.#control?.write(`${JSON.stringify(reply)}\n`);
    }

    async #register(body: unknown) {
      const answer = await registrar.register(body, {
        channel: this.channel,
        node: this.#claimedNode,
        origin: LINK_INSTANCE_ORIGIN,
      });
      if (this.closed)
        throw new HttpError("node_unreachable", "The link closed while the registration was checked.");
      const key = this.#claimedNode.toLowerCase();
      this.nodeKey = key;
      this.#settle();
      const previous = current.get(key);
      current.set(key, this);
      if (previous !== undefined && previous !== this)
        previous.close("replaced by a newer link from the same node");
      return answer;
    }

    async #heartbeat(body: unknown) {
      const key = this.#claimedNode.toLowerCase();
      if (this.nodeKey === null || current.get(key) !== this) {
        throw new HttpError("unknown_instance", "This link carries no registration; register on it first.");
      }
      const message = (body as { message?: { node?: unknown } } | null)?.message;
      if (typeof message?.node !== "string" || message.node.toLowerCase() !== key) {
        throw new HttpError(
          "link_mismatch",
          `A heartbeat on this link must be signed by ${this.#claimedNode}.`,
        );
      }
      await registrar.heartbeat(body);
      return { ok: true };
    }

    /** The handshake is over (registered or closed): it no longer counts against its address. */
    #settle(): void {
      if (!this.#pending) return;
      this.#pending = false;
      const left = (pendingByAddress.get(this.#remote) ?? 1) - 1;
      if (left <= 0) pendingByAddress.delete(this.#remote);
      else pendingByAddress.set(this.#remote, left);
    }

    #closed(reason: string): void {
      if (this.closed) return;
      this.closed = true;
      this.#settle();
      for (const timer of this.#timers) clearTimeout(timer);
      open.delete(this);
      this.channel.detach();
      const key = this.nodeKey;
      if (key !== null && current.get(key) === this) {
        current.delete(key);
        // Kept, but not routed: a node that reconnects keeps its history; one that does not goes stale.
        pool.markUnreachable(key);
        logger.info({ node: this.#claimedNode, reason }, "node link lost");
      } else if (key === null) {
        logger.debug({ node: this.#claimedNode, reason }, "unregistered link closed");
      }
      if (!this.#session.destroyed) this.#session.destroy();
      if (!this.#socket.destroyed) this.#socket.destroy();
    }

    close(reason: string): void {
      this.#closed(reason);
    }

    goAway(): void {
      if (!this.#session.closed && !this.#session.destroyed) this.#session.close();
    }
  }

  const refuse = (socket: Duplex, status: number, error: HttpError) => {
    const body = JSON.stringify(errorBody(error));
    const reason =
      status === 400
        ? "Bad Request"
        : status === 404
          ? "Not Found"
          : status === 503
            ? "Service Unavailable"
            : "Error";
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void accept(req, socket as Socket, head).catch((error: unknown) => {
      logger.warn({ err: error }, "link handshake failed");
      socket.destroy();
    });
  });

  async function accept(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on("error", () => undefined);
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query < 0 ? url : url.slice(0, query);
    if (path !== GATEWAY_LINK_PATH) {
      refuse(socket, 404, new HttpError("not_found", `No upgrade is served at ${path}.`));
      return;
    }
    if (req.method !== "GET" || (req.headers.upgrade ?? "").toLowerCase() !== LINK_UPGRADE_PROTOCOL) {
      refuse(
        socket,
        400,
        new HttpError(
          "invalid_value",
          `A link is opened with GET and Upgrade: ${LINK_UPGRADE_PROTOCOL}.`,
          "upgrade",
        ),
      );
      return;
    }
    if (options.accepting?.() === false) {
      refuse(socket, 503, new HttpError("shutting_down", "The gateway is shutting down."));
      return;
    }
    const node = schemas.address.safeParse(req.headers[LINK_NODE_HEADER]);
    const challenge = schemas.bytes32.safeParse(req.headers[LINK_CHALLENGE_HEADER]);
    if (!node.success || !challenge.success) {
      refuse(
        socket,
        400,
        new HttpError(
          "invalid_value",
          `A link names its node (${LINK_NODE_HEADER}: 0x…) and a fresh 32-byte challenge (${LINK_CHALLENGE_HEADER}: 0x…).`,
          node.success ? LINK_CHALLENGE_HEADER : LINK_NODE_HEADER,
        ),
      );
      return;
    }
    const remote = socket.remoteAddress ?? "";
    const pending = pendingByAddress.get(remote) ?? 0;
    if (open.size >= maxLinks || pending >= maxPendingPerAddress) {
      refuse(socket, 503, new HttpError("no_capacity", "The gateway takes no more links now; retry later."));
      return;
    }
    pendingByAddress.set(remote, pending + 1);
    let counted = true;
    try {
      const info: GatewayInfo = registrar.info();
      const issuedAt = Math.floor(now() / 1000);
      const accepted = await signObject(account, {
        kind: "LinkAccept",
        chainId,
        message: {
          gateway: account.address,
          node: node.data,
          challenge: challenge.data,
          issuedAt,
          expiresAt: issuedAt + LINK_ACCEPT_TTL_SECONDS,
        },
      });
      if (socket.destroyed) return;
      const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${LINK_UPGRADE_PROTOCOL}\r\n` +
          `${LINK_INFO_HEADER}: ${b64(info)}\r\n${LINK_ACCEPT_HEADER}: ${b64(accepted)}\r\n\r\n`,
      );
      // The HTTP server's idle timeout was for a request; a link is quiet between requests (pings watch it).
      socket.setTimeout(0);
      socket.setNoDelay(true);
      if (head.length > 0) socket.unshift(head);
      const session = h2connect(LINK_INSTANCE_ORIGIN, {
        createConnection: () => socket,
        settings: { initialWindowSize: STREAM_WINDOW, enablePush: false },
        maxSessionMemory: 64,
      });
      session.on("connect", () => {
        try {
          session.setLocalWindowSize(SESSION_WINDOW);
        } catch {
          // closed meanwhile
        }
      });
      counted = false;
      const link = new Link(socket, session, node.data, remote);
      open.add(link);
      logger.debug({ node: node.data, link: link.id }, "link opened; waiting for its registration");
    } finally {
      if (counted) {
        const left = (pendingByAddress.get(remote) ?? 1) - 1;
        if (left <= 0) pendingByAddress.delete(remote);
        else pendingByAddress.set(remote, left);
      }
    }
  }

  return {
    get size() {
      return current.size;
    },
    linked: (nodeKey: string) => current.get(nodeKey.toLowerCase())?.channel.open === true,
    async close(graceMs = 2_000) {
      const links = [...open];
      for (const link of links) link.goAway();
      const until = Date.now() + graceMs;
      while (open.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const link of [...open]) link.close("gateway shutting down");
    },
  };
}
