/**
 * Who may use the setup routes. An unclaimed node belongs to whoever claims it first, so the
 * routes answer only this machine (loopback peers), or with `--setup-host` also peers on a private
 * LAN (RFC 1918, IPv6 ULA; never link-local). A request without a peer address (tunnelled through
 * the gateway's link) is nobody's. The Host header must name this machine or a local name, so
 * that a web page whose domain was rebound to 127.0.0.1 cannot drive the routes from a browser,
 * and a POST from another origin is refused.
 */
import { isIP } from "node:net";

export type PeerKind = "loopback" | "lan" | "other";

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:10.0.0.2`), else the address as is. */
function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1] ?? address;
}

function ipv4Octets(address: string): number[] | null {
  if (isIP(address) !== 4) return null;
  return address.split(".").map(Number);
}

/** Classifies a socket's remote address; anything unknown or absent is `other`. */
export function peerKind(remoteAddress: string | undefined | null): PeerKind {
  if (!remoteAddress) return "other";
  const address = unmapped(remoteAddress.replace(/%.*$/, ""));
  const v4 = ipv4Octets(address);
  if (v4) {
    const [a = -1, b = -1] = v4;
    if (a === 127) return "loopback";
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "lan";
    return "other";
  }
  if (isIP(address) !== 6) return "other";
  const lower = address.toLowerCase();
  if (lower === "::1" || lower === "0:0:0:0:0:0:0:1") return "loopback";
  // fc00::/7: the first byte is fc or fd (unique local addresses).
  const first = lower.startsWith("::") ? "0" : (lower.split(":")[0] ?? "");
  if (first.length === 4 && (first.startsWith("fc") || first.startsWith("fd"))) return "lan";
  return "other";
}

/** Whether a peer of this kind may use the setup routes. */
export function peerAllowed(kind: PeerKind, allowLan: boolean): boolean {
  return kind === "loopback" || (allowLan && kind === "lan");
}

/** The host part of a Host header (`[::1]:8787` → `::1`), lower case. */
export function hostOf(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    return end < 0 ? "" : value.slice(1, end);
  }
  const colon = value.lastIndexOf(":");
  return colon >= 0 && value.indexOf(":") === colon ? value.slice(0, colon) : value;
}

/**
 * Whether a Host header names this machine as a browser or the CLI would reach it directly: an IP
 * literal, `localhost` (and `*.localhost`), and with `allowLan` also a local name (one label, or
 * `.local`, `.lan`, `.home.arpa`, `.internal`). A public domain name is what DNS rebinding uses.
 */
export function hostAllowed(header: string | undefined, allowLan: boolean): boolean {
  if (!header) return false;
  const host = hostOf(header);
  if (host === "") return false;
  if (isIP(host) !== 0) return true;
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (!allowLan) return false;
  if (!/^[a-z0-9.-]+$/.test(host)) return false;
  return !host.includes(".") || /\.(local|lan|home\.arpa|internal)$/.test(host);
}

/** Whether an Origin header (when a browser sent one) is the page's own: same host and port as Host. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (!host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.trim().toLowerCase();
  } catch {
    return false;
  }
}
