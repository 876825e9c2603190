/**
 * The limits every gbt HTTP server (the gateway's, the node's) holds at the socket, before any
 * route runs: Node's defaults (60 s for headers, 300 s for a request, no idle limit on a fresh
 * connection, no connection cap) let a slowloris or a pile of idle sockets hold a server's file
 * descriptors for minutes. With `guardServer`:
 *
 * - a connection that sends no request within `idleTimeoutMs` is closed (Node's `server.timeout`,
 *   switched off for the life of each request, so a long stream is never cut by it);
 * - a request's headers must arrive within `headersTimeoutMs`, its whole body within
 *   `requestTimeoutMs` (a slowloris dribbling header lines is closed at the first);
 * - an idle keep-alive connection is closed after `keepAliveTimeoutMs`;
 * - at most `maxConnections` connections at once, and at most `maxConnectionsPerIp` from one
 *   address: one client's pile of sockets cannot take the server from everyone else.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";

export interface ServerGuardOptions {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export const DEFAULT_SERVER_GUARD: ServerGuardOptions = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 10_000,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 16_384,
  maxConnectionsPerIp: 512,
};

/** Applies the guard to `server` (before it listens); returns the live count per address, for metrics. */
export function guardServer(server: Server, options: Partial<ServerGuardOptions> = {}): Map<string, number> {
  const guard = { ...DEFAULT_SERVER_GUARD, ...options };
  server.headersTimeout = guard.headersTimeoutMs;
  server.requestTimeout = guard.requestTimeoutMs;
  server.keepAliveTimeout = guard.keepAliveTimeoutMs;
  // Checked often enough that the timeouts above hold to within a second.
  (server as Server & { connectionsCheckingInterval?: number }).connectionsCheckingInterval = 1000;
  server.timeout = guard.idleTimeoutMs;
  server.maxConnections = guard.maxConnections;
  server.on("request", (req) => {
    // A request is under way: the idle limit is for sockets that send nothing.
    req.socket.setTimeout(0);
  });
  const perIp = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const ip = socket.remoteAddress ?? "";
    const count = (perIp.get(ip) ?? 0) + 1;
    if (count > guard.maxConnectionsPerIp) {
      socket.destroy();
      return;
    }
    perIp.set(ip, count);
    socket.once("close", () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
  });
  return perIp;
}
