/**
 * A per-address request limit for the routes anyone may call without an API key (node
 * registration and heartbeats, the job relay): each does signature work, so an unkeyed flood
 * must stop at the door. Exact over any sliding minute (the same ring as the keys' limits), for
 * the most recently seen 65 536 addresses (an LRU: a spray of addresses cannot grow it).
 */
import type { IncomingMessage } from "node:http";
import { HttpError } from "@gbt/protocol";
import type { MiddlewareHandler } from "hono";
import { LRUCache } from "lru-cache";
import type { GatewayEnv } from "../http/gateway-env.js";
import { duration, RequestWindow } from "./rate-limiter.js";

export function perIpLimit(perMinute: number, now: () => number = Date.now): MiddlewareHandler<GatewayEnv> {
  const windows = new LRUCache<string, RequestWindow>({ max: 65_536 });
  return async (c, next) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const ip = incoming?.socket.remoteAddress ?? "unknown";
    let window = windows.get(ip);
    if (window === undefined) {
      window = new RequestWindow(perMinute);
      windows.set(ip, window);
    }
    const at = now();
    if (window.used(at) >= perMinute) {
      const resetMs = window.resetMs(at);
      throw new HttpError(
        "rate_limit_exceeded",
        `Too many requests from this address: at most ${perMinute} a minute.`,
        null,
        {
          "retry-after": String(Math.max(1, Math.ceil(resetMs / 1000))),
          "x-ratelimit-limit-requests": String(perMinute),
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": duration(resetMs),
        },
      );
    }
    window.add(at);
    await next();
  };
}
