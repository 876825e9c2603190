/**
 * The type of the gateway's Hono apps: what middleware hands to the handlers after it. Every route
 * module and every feature builds its routes as a `Hono<GatewayEnv>`, mounted by the server.
 */
import type { HttpSurface } from "@gbt/protocol";
import type { Hono } from "hono";
import type { Authenticated } from "../auth/accounts.js";

/** How the one error handler maps what a route throws (see `errorScope`). */
export interface ErrorScope {
  /** Whose errors these are: the gateway's own (default) or its on-chain actions'. */
  surface: HttpSurface;
  /** Named in a 500's message ("Internal error in the …"). */
  component: string;
}

export interface GatewayEnv {
  Variables: {
    /** The consumer account behind the request's API key (set by `apiKey()`). */
    principal: Authenticated;
    /** The route's name in the request metrics (set by `named()`). */
    route: string;
    errorScope: ErrorScope;
  };
}

export type GatewayRoutes = Hono<GatewayEnv>;
