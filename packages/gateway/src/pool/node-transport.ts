/**
 * How the gateway reaches a node, and which node addresses it will reach at all. Anyone may
 * register a node, so a registered URL is an attacker's input: unchecked, it turns the gateway
 * into a proxy to its own network (the cloud metadata service, an admin port on loopback, a
 * database on the private LAN) and its error messages into a port scanner.
 *
 * - At registration, `checkUrl` accepts only `http:`/`https:` origins (no userinfo, path, query
 *   or fragment), refuses internal names (`localhost`, `*.internal`, single labels…) before any
 *   lookup, resolves the host and refuses it when any address is loopback, private, CGNAT,
 *   link-local/metadata, multicast or reserved (see `refusal`).
 * - At connect time the same check runs again on every address the name resolves to (a name may
 *   resolve to a public address at registration and to 169.254.169.254 a minute later: DNS
 *   rebinding), through the `lookup` of the agents every request to a node goes through.
 * - Redirects are never followed (node:http never follows them; `request` answers them as they
 *   are, and the callers treat a 3xx as a failed answer).
 * - `allowPrivateNodes` (gateway.json) admits loopback, private and CGNAT addresses, for `gbt up`,
 *   a LAN pool and tests. Link-local and metadata addresses stay refused even then: no node is
 *   ever there, and the metadata service is the one target worth the most to an attacker.
 *
 * Every request to a node (the proxy's, a challenge's, a relayed job's) uses one of this
 * transport's two keep-alive agents, so one policy covers them all. `https:` nodes are spoken to
 * with the platform's certificate checks.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { HttpError } from "@gbt/protocol";

/** Resolves a host name to all its addresses (dns.lookup with `all: true`); injectable for tests. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

export interface NodeTransportOptions {
  /** Admit loopback, private (RFC 1918, ULA) and CGNAT node addresses. */
  allowPrivate: boolean;
  /** Default: the system resolver (dns.lookup, all addresses). */
  resolve?: ResolveHost;
}

/** What one whole-answer request to a node says. */
export interface NodeRequestInit {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: Buffer | string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

/**
 * How the gateway reaches one node: the agents every request to it goes through (the proxy's
 * attempts pick one by the URL's scheme) and a whole-answer request (challenges, relayed jobs).
 * A NodeTransport (the URL policy at connect time) for a node with a public URL; a link channel
 * (pool/../link) for a node reached over its outbound link.
 */
export interface NodeChannel {
  readonly http: HttpAgent;
  readonly https: HttpAgent;
  /**
   * The channel itself is gone (an outbound link that closed): what failed on it is the link's
   * loss, one event the pool already knows of (the instance is unroutable until it registers
   * again), not a failure per request for the breaker.
   */
  readonly lost?: boolean;
  request(url: URL, init: NodeRequestInit): Promise<NodeResponse>;
}

/** A node's answer read whole, within a byte cap. */
export interface NodeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Why a node could not be asked (logged; consumers see a generic message). */
export class NodeRequestError extends Error {
  constructor(
    readonly reason: "refused_address" | "unreachable" | "timeout" | "too_large" | "aborted",
    message: string,
  ) {
    super(message);
  }
}

const ALWAYS_REFUSED = blockList([
  ["0.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"], // link-local, the cloud metadata service (169.254.169.254)
  ["192.0.0.0", 24, "ipv4"], // IETF protocol assignments (192.0.0.192: Oracle's metadata)
  ["224.0.0.0", 4, "ipv4"], // multicast
  ["240.0.0.0", 4, "ipv4"], // reserved, broadcast
  ["::", 128, "ipv6"],
  ["fe80::", 10, "ipv6"], // link-local
  ["fd00:ec2::", 32, "ipv6"], // AWS's IPv6 metadata service
  ["ff00::", 8, "ipv6"], // multicast
]);

const PRIVATE = blockList([
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"], // carrier-grade NAT
  ["127.0.0.0", 8, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"], // benchmarking
  ["192.0.2.0", 24, "ipv4"], // documentation ranges
  ["198.51.100.0", 24, "ipv4"],
  ["203.0.113.0", 24, "ipv4"],
  ["::1", 128, "ipv6"],
  ["fc00::", 7, "ipv6"], // unique local
  ["2001:db8::", 32, "ipv6"], // documentation
  ["100::", 64, "ipv6"], // discard
]);

/** Names that are internal by construction: refused without a lookup (which could itself leak). */
const METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "instance-data",
  "instance-data.ec2.internal",
]);
const INTERNAL_SUFFIXES = [".internal", ".local", ".localdomain", ".lan", ".home.arpa", ".intranet", ".corp"];

function blockList(ranges: [string, number, "ipv4" | "ipv6"][]): BlockList {
  const list = new BlockList();
  for (const [network, prefix, family] of ranges) list.addSubnet(network, prefix, family);
  return list;
}

/**
 * Why the gateway refuses to reach `address` (an IP literal), or null when it may. IPv4-mapped
 * and NAT64 IPv6 addresses are judged by the IPv4 address inside them.
 */
export function refusal(address: string, allowPrivate: boolean): string | null {
  const family = isIP(address);
  if (family === 0) return "not an IP address";
  let ip = address;
  let type: "ipv4" | "ipv6" = family === 4 ? "ipv4" : "ipv6";
  if (type === "ipv6") {
    const embedded = embeddedIpv4(ip);
    if (embedded !== null) {
      ip = embedded;
      type = "ipv4";
    }
  }
  if (ALWAYS_REFUSED.check(ip, type)) return "a link-local, metadata, multicast or reserved address";
  if (!allowPrivate && PRIVATE.check(ip, type)) {
    return "a loopback, private or CGNAT address (set allowPrivateNodes in gateway.json to admit them)";
  }
  return null;
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) address. */
function embeddedIpv4(ipv6: string): string | null {
  const lower = ipv6.toLowerCase();
  const match = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(lower);
  if (match === null) return null;
  if (match[1] !== undefined) return match[1];
  const high = Number.parseInt(match[2] as string, 16);
  const low = Number.parseInt(match[3] as string, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

function nameRefusal(hostname: string, allowPrivate: boolean): string | null {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (METADATA_NAMES.has(name)) return "a metadata service name";
  if (allowPrivate) return null;
  if (name === "localhost" || name.endsWith(".localhost")) return "a loopback name";
  if (!name.includes(".")) return "a single-label (internal) name";
  if (INTERNAL_SUFFIXES.some((suffix) => name.endsWith(suffix))) return "an internal name";
  return null;
}

const defaultResolve: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

export class NodeTransport implements NodeChannel {
  readonly allowPrivate: boolean;
  readonly #resolve: ResolveHost;
  readonly http: HttpAgent;
  readonly https: HttpsAgent;

  constructor(options: NodeTransportOptions) {
    this.allowPrivate = options.allowPrivate;
    this.#resolve = options.resolve ?? defaultResolve;
    const lookup = this.#guardedLookup();
    const agentOptions = {
      keepAlive: true,
      maxSockets: Number.POSITIVE_INFINITY,
      keepAliveMsecs: 10_000,
      lookup,
    };
    this.http = new HttpAgent(agentOptions);
    this.https = new HttpsAgent(agentOptions);
  }

  /**
   * A node's registered URL, checked: its origin (`scheme://host[:port]`), or 400
   * `invalid_node_url` saying what is wrong. Resolves the host (no connection is made).
   */
  async checkUrl(text: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalidUrl("is not a URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw invalidUrl(`uses ${url.protocol.replace(/:$/, "")}; a node is reached over http or https only`);
    }
    if (url.username !== "" || url.password !== "") throw invalidUrl("carries credentials (user:password@)");
    if (url.search !== "" || text.includes("?")) throw invalidUrl("has a query");
    if (url.hash !== "" || text.includes("#")) throw invalidUrl("has a fragment");
    if (url.pathname !== "/" && url.pathname !== "")
      throw invalidUrl("has a path; give the node's origin only");
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (isIP(host) !== 0) {
      const why = refusal(host, this.allowPrivate);
      if (why !== null) throw invalidUrl(`points at ${why}`);
      return url.origin;
    }
    const byName = nameRefusal(host, this.allowPrivate);
    if (byName !== null) throw invalidUrl(`names ${byName}`);
    let addresses: LookupAddress[];
    try {
      addresses = await this.#resolve(host);
    } catch {
      throw invalidUrl(`names a host that does not resolve (${host})`);
    }
    if (addresses.length === 0) throw invalidUrl(`names a host that does not resolve (${host})`);
    for (const { address } of addresses) {
      const why = refusal(address, this.allowPrivate);
      if (why !== null) throw invalidUrl(`resolves to ${why}`);
    }
    return url.origin;
  }

  /**
   * One request to a node through this transport, read whole up to `maxBytes` (the rest is not
   * read: the connection is closed). Rejects with NodeRequestError; never follows a redirect.
   */
  request(url: URL, init: NodeRequestInit): Promise<NodeResponse> {
    return requestWhole(url.protocol === "https:" ? this.https : this.http, url, init);
  }

  /** Frees the agents' idle sockets (at gateway shutdown). */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  /** The agents' lookup: every address a name resolves to is checked at connect time. */
  #guardedLookup(): LookupFunction {
    return (hostname, options, callback) => {
      const byName = nameRefusal(hostname, this.allowPrivate);
      if (byName !== null) {
        callback(
          new NodeRequestError("refused_address", `refused to connect: ${hostname} is ${byName}`),
          "",
          0,
        );
        return;
      }
      this.#resolve(hostname).then(
        (addresses) => {
          for (const { address } of addresses) {
            const why = refusal(address, this.allowPrivate);
            if (why !== null) {
              callback(
                new NodeRequestError("refused_address", `refused to connect: ${hostname} resolves to ${why}`),
                "",
                0,
              );
              return;
            }
          }
          const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
          const usable = wanted === 0 ? addresses : addresses.filter((entry) => entry.family === wanted);
          if (usable.length === 0) {
            callback(
              Object.assign(new Error(`${hostname} has no usable address`), { code: "ENOTFOUND" }),
              "",
              0,
            );
          } else if (options.all) callback(null, usable);
          else callback(null, (usable[0] as LookupAddress).address, (usable[0] as LookupAddress).family);
        },
        (error: Error) => callback(error as NodeJS.ErrnoException, "", 0),
      );
    };
  }
}

/**
 * One request to a node through `agent`, read whole up to `maxBytes` (the rest is not
 * read: the connection is closed). Rejects with NodeRequestError; never follows a redirect.
 */
export function requestWhole(agent: HttpAgent, url: URL, init: NodeRequestInit): Promise<NodeResponse> {
  return new Promise<NodeResponse>((resolve, reject) => {
    const https = url.protocol === "https:";
    const body = typeof init.body === "string" ? Buffer.from(init.body) : init.body;
    let done = false;
    const finish = (error: NodeRequestError | null, response?: NodeResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      init.signal?.removeEventListener("abort", onAbort);
      if (error !== null) {
        request.destroy();
        reject(error);
      } else resolve(response as NodeResponse);
    };
    const request = (https ? httpsRequest : httpRequest)(url, {
      agent,
      method: init.method,
      headers: { ...init.headers, ...(body ? { "content-length": String(body.length) } : {}) },
    });
    const timer = setTimeout(
      () => finish(new NodeRequestError("timeout", `no complete answer within ${init.timeoutMs} ms`)),
      init.timeoutMs,
    );
    const onAbort = () => finish(new NodeRequestError("aborted", "the request was cancelled"));
    if (init.signal?.aborted) {
      onAbort();
      return;
    }
    init.signal?.addEventListener("abort", onAbort, { once: true });
    request.on("error", (error: NodeJS.ErrnoException) => {
      const refused = error instanceof NodeRequestError;
      finish(refused ? error : new NodeRequestError("unreachable", error.code ?? error.message));
    });
    request.on("response", (response) => {
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > init.maxBytes) {
        finish(
          new NodeRequestError("too_large", `the answer declares ${declared} bytes (cap ${init.maxBytes})`),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > init.maxBytes) {
          finish(new NodeRequestError("too_large", `the answer passed the cap of ${init.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.on("end", () => {
        if (!response.complete) finish(new NodeRequestError("unreachable", "the answer was cut"));
        else
          finish(null, {
            status: response.statusCode ?? 502,
            headers: response.headers,
            body: Buffer.concat(chunks),
          });
      });
      response.on("error", () => finish(new NodeRequestError("unreachable", "the answer was cut")));
      response.on("close", () => finish(new NodeRequestError("unreachable", "the answer was cut")));
    });
    request.end(body);
  });
}

function invalidUrl(why: string): HttpError {
  return new HttpError("invalid_node_url", `The node's URL ${why}.`, "url");
}
