/**
 * How the gateway reaches a node over its outbound link: every request to the node becomes one
 * HTTP/2 CONNECT stream on the node's session, and node:http speaks its usual HTTP/1.1 exchange
 * inside it. The proxy, challenges and the job relay keep their code: they get this channel's
 * agent where a directly reachable node's transport would give a keep-alive TCP agent, so the same
 * timeouts, byte caps, stream relay, cancellation (a destroyed request resets its stream, and the
 * node's server sees its client leave) and breaker outcomes hold on both paths.
 */

import { type AgentOptions, Agent as HttpAgent } from "node:http";
import { type ClientHttp2Session, constants as h2 } from "node:http2";
import type { Duplex } from "node:stream";
import { asHttpConnection, LINK_TUNNEL_AUTHORITY } from "@gbt/protocol";
import {
  type NodeChannel,
  NodeRequestError,
  type NodeRequestInit,
  type NodeResponse,
  requestWhole,
} from "../pool/node-transport.js";

/** The origin link-backed instances are given: never dialled (the agent opens streams instead). */
export const LINK_INSTANCE_ORIGIN = "http://node.gbt-link";

type Connect = (
  options: unknown,
  callback: (error: Error | null, socket?: Duplex) => void,
) => Duplex | undefined;

/** An http.Agent whose "connections" are CONNECT streams on one HTTP/2 session. */
class LinkAgent extends HttpAgent {
  readonly #session: () => ClientHttp2Session | null;

  constructor(session: () => ClientHttp2Session | null, options: AgentOptions = {}) {
    super({ ...options, keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    this.#session = session;
    // node:http calls createConnection with (options, callback): a stream, or an error by callback.
    (this as unknown as { createConnection: Connect }).createConnection = (_options, callback) => {
      const session = this.#session();
      if (session === null || session.closed || session.destroyed) {
        process.nextTick(() => callback(new NodeRequestError("unreachable", "the node's link is closed")));
        return undefined;
      }
      let stream: Duplex;
      try {
        stream = session.request(
          { [h2.HTTP2_HEADER_METHOD]: "CONNECT", [h2.HTTP2_HEADER_AUTHORITY]: LINK_TUNNEL_AUTHORITY },
          { endStream: false },
        );
      } catch (error) {
        process.nextTick(() => callback(error as Error));
        return undefined;
      }
      return asHttpConnection(stream);
    };
  }
}

/** The channel of one link-backed node: its agent and whole-answer requests, over the current session. */
export class LinkChannel implements NodeChannel {
  readonly http: HttpAgent;
  readonly https: HttpAgent;
  #session: ClientHttp2Session | null;

  constructor(session: ClientHttp2Session) {
    this.#session = session;
    this.http = new LinkAgent(() => this.#session);
    this.https = this.http;
  }

  /** It was detached (its link closed or was replaced): what fails on it now is the link's loss. */
  get lost(): boolean {
    const session = this.#session;
    // destroyed is set before the session's streams are torn down: their failures see it.
    return session === null || session.destroyed || session.closed;
  }

  /** Whether requests can still go out on it. */
  get open(): boolean {
    const session = this.#session;
    return session !== null && !session.closed && !session.destroyed;
  }

  request(url: URL, init: NodeRequestInit): Promise<NodeResponse> {
    return requestWhole(this.http, new URL(`${url.pathname}${url.search}`, LINK_INSTANCE_ORIGIN), init);
  }

  /** No request goes out on it any more (the link closed or was replaced). */
  detach(): void {
    this.#session = null;
  }
}
