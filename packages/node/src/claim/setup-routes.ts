/**
 * The setup routes of an unclaimed node, mounted by the node's Hono app when `gbt serve` runs a
 * setup controller: `GET /setup` (the page), `GET /setup/info` (JSON), `POST /setup/claim` (a
 * signed NodeClaim, at most 16 KiB). Only for peers setup-access.ts admits; errors are thrown as
 * HttpErrors for the node app's one onError to answer.
 */
import type { IncomingMessage } from "node:http";
import { HttpError } from "@gbt/protocol";
import type { Context, Env, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { hostAllowed, peerAllowed, peerKind, sameOrigin } from "./setup-access.js";
import type { SetupController } from "./setup-controller.js";
import { newNonce, renderSetupPage, setupPageHeaders } from "./setup-page.js";

export const setupPaths = {
  page: "/setup",
  info: "/setup/info",
  claim: "/setup/claim",
} as const;

/** The largest accepted claim body. */
export const MAX_CLAIM_BODY_BYTES = 16 * 1024;

/** The socket's peer address, as @hono/node-server hands it over; undefined over the gateway's tunnel. */
function remoteAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/** Refuses everyone setup mode must not serve; the peer's kind is what the routes then see. */
export function setupAccess(controller: SetupController): MiddlewareHandler {
  return async (c, next) => {
    const kind = peerKind(remoteAddress(c));
    if (!peerAllowed(kind, controller.allowLan)) {
      throw new HttpError(
        "policy_denied",
        controller.allowLan
          ? "Setup is served only to this machine and the local network."
          : "Setup is served only to this machine (loopback). Open it on the node itself, or start gbt serve with --setup-host to allow the local network.",
        null,
        {},
        "setup_loopback_only",
      );
    }
    if (!hostAllowed(c.req.header("host"), controller.allowLan)) {
      throw new HttpError(
        "policy_denied",
        "Setup answers only requests addressed to this machine by IP address or a local name (Host header).",
        null,
        {},
        "setup_bad_host",
      );
    }
    if (
      c.req.method !== "GET" &&
      c.req.method !== "HEAD" &&
      !sameOrigin(c.req.header("origin"), c.req.header("host"))
    ) {
      throw new HttpError(
        "policy_denied",
        "A claim must come from the setup page itself or the CLI.",
        null,
        {},
        "setup_cross_origin",
      );
    }
    await next();
  };
}

/** Registers the setup routes on `app` (a Hono app whose onError answers HttpErrors). */
export function registerSetupRoutes<E extends Env>(app: Hono<E>, controller: SetupController): void {
  const access = setupAccess(controller);
  app.use(setupPaths.page, access);
  app.use(`${setupPaths.page}/*`, access);
  const loopbackPeer = (c: Context) => peerKind(remoteAddress(c)) === "loopback";

  app.get(setupPaths.page, async (c) => {
    const info = await controller.info();
    const nonce = newNonce();
    return c.body(renderSetupPage(info, { nonce, showCode: loopbackPeer(c) }), 200, setupPageHeaders(nonce));
  });

  app.get(setupPaths.info, async (c) => {
    const info = await controller.info();
    // The code proves the claimer saw this machine's screen: only loopback peers are told it.
    const shown = loopbackPeer(c);
    return c.json({ ...info, code: shown ? info.code : null, ...(shown ? {} : { codeHidden: true }) }, 200, {
      "cache-control": "no-store",
    });
  });

  app.post(
    setupPaths.claim,
    bodyLimit({
      maxSize: MAX_CLAIM_BODY_BYTES,
      onError: () => {
        throw new HttpError("request_too_large", `A claim is at most ${MAX_CLAIM_BODY_BYTES} bytes.`);
      },
    }),
    async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/json\b/i.test(type)) {
        throw new HttpError(
          "invalid_value",
          "Send the claim as JSON (content-type: application/json).",
          null,
          {},
          "claim_not_json",
        );
      }
      const text = await c.req.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new HttpError(
          "invalid_json",
          "The claim is not valid JSON: paste the whole output of `gbt owner claim --print`.",
        );
      }
      const { owner } = await controller.claim(body);
      const state = await controller.state();
      return c.json({ owner, node: state.node, owners: state.owners }, 200);
    },
  );
}
