// Two node servers in one process, on the same scripted backend settings, joined to one gateway:
// one directly (the gateway connects to its loopback URL), one over the outbound link. Prints
// {"direct": MODEL, "link": MODEL} once both are registered; SIGTERM stops them. Used by
// bench/outbound-link.mjs so that the nodes' work is off the consumer's event loop.
//
//   node bench/lib/link-nodes.mjs GATEWAY_URL TOKEN_MS

import { startGatewayLink, startNodeServer, startOutboundLink } from "@gbt/node";
import { createScriptedBackend } from "@gbt/node/testing";
import { LINK_NODE_URL } from "@gbt/protocol";
import pino from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const [gatewayUrl, tokenMsText] = process.argv.slice(2);
const tokenMs = Number(tokenMsText ?? "0");
const logger = pino({ level: "warn" }, pino.destination(2));
const CHAIN = 31_337;

async function node(model, mode) {
  const backend = createScriptedBackend({
    models: [model],
    tokens: ["tok "],
    stampTokens: true,
    tokenMs,
    defaultMaxTokens: 32,
    capacity: 512,
  });
  const account = privateKeyToAccount(generatePrivateKey());
  let link = null;
  const server = await startNodeServer({
    backend,
    logger,
    capacity: 512,
    gatewayLink: {
      isLinkToken: (token) => link?.isLinkToken(token) ?? false,
      signReceipt: (receipt) => link.signReceipt(receipt),
    },
  });
  const outbound =
    mode === "link"
      ? startOutboundLink({
          gatewayUrl,
          account,
          chainId: CHAIN,
          pin: { load: async () => null, save: async () => {} },
          accept: (connection) => server.acceptConnection(connection),
          logger,
        })
      : null;
  link = startGatewayLink({
    gatewayUrl,
    account,
    nodeUrl: mode === "link" ? LINK_NODE_URL : server.url,
    capacity: 512,
    chainId: CHAIN,
    models: async () => [{ id: model }],
    backend: { kind: "scripted" },
    inFlight: () => server.inFlight(),
    health: async () => ({ ok: true }),
    latestBenchmark: () => null,
    logger,
    ...(outbound ? { carrier: outbound } : {}),
  });
  await link.ready;
  return async () => {
    await link.stop();
    await server.close(100);
    await outbound?.stop(100);
  };
}

const stops = [await node("bench-direct", "direct"), await node("bench-link", "link")];
process.stdout.write(`${JSON.stringify({ direct: "bench-direct", link: "bench-link" })}\n`);
process.on("SIGTERM", async () => {
  for (const stop of stops) await stop();
  process.exit(0);
});
