/**
 * A listener that serves only the setup routes (and 404 for the rest): for `--setup-host`, where
 * the setup page must be reachable on a LAN address while the node server stays on loopback, and
 * for tests of the claim flow that need no backend. Errors are answered with protocol's table, as
 * the node server answers them.
 */
import type { AddressInfo } from "node:net";
import { errorBody, guardServer, HttpError, toHttpError } from "@gbt/protocol";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { SetupController } from "./setup-controller.js";
import { registerSetupRoutes } from "./setup-routes.js";

export interface SetupServerOptions {
  setup: SetupController;
  logger: Logger;
  /** Default 127.0.0.1; a LAN address needs a controller created with `allowLan`. */
  host?: string;
  port?: number;
}

export interface SetupServer {
  readonly url: string;
  close(): Promise<void>;
}

/** The Hono app of the setup routes alone. */
export function setupApp(setup: SetupController, logger: Logger): Hono {
  const app = new Hono();
  registerSetupRoutes(app, setup);
  const answer = (error: unknown) => {
    const http = toHttpError(error, "node", "setup server");
    if (http.status >= 500 && !(error instanceof HttpError))
      logger.error({ err: error }, "setup request failed");
    return new Response(JSON.stringify(errorBody(http)), {
      status: http.status as ContentfulStatusCode,
      headers: { "content-type": "application/json", ...http.headers },
    });
  };
  app.notFound((c) => answer(new HttpError("not_found", `No route ${c.req.method} ${c.req.path}.`)));
  app.onError((error) => answer(error));
  return app;
}

/** Starts the setup-only listener. */
export async function startSetupServer(options: SetupServerOptions): Promise<SetupServer> {
  const app = setupApp(options.setup, options.logger);
  const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false });
  guardServer(server as import("node:http").Server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  options.logger.info({ url }, "setup page listening");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as import("node:http").Server).closeAllConnections?.();
      }),
  };
}
