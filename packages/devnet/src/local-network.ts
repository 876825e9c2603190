/**
 * `gbt up`: a whole local network in one process. A gateway and N nodes, each node with its own
 * identity and state under `<dir>/node-<i>` (set up like `gbt setup --yes` on the embedded
 * backend with the generated test model), joined to the gateway through the real signed link over
 * loopback HTTP. Ramp-up is off (a local network has no strangers to be careful with). It waits
 * until every node is registered, then gives out one consumer key. Every node is claimed by one
 * owner key, `<dir>/owner.key`, which signs jobs for them.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type RunningGateway, startGateway } from "@gbt/gateway";
import { probeHardware, type RunningNode, resolvePaths, setupNode, startServe } from "@gbt/node";
import { GbtError, isGbtError } from "@gbt/protocol";
import type { Logger } from "pino";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { type LocalChain, startLocalChain } from "./local-chain.js";

export interface LocalNetworkParameters {
  /** Where the gateway and the nodes keep their state. */
  dir: string;
  nodes: number;
  /** Gateway port (0 picks a free one). */
  port: number;
  host?: string;
  /** llama.cpp threads per node. */
  threads: number;
  capacity?: number;
  logger: Logger;
  onProgress?: (message: string) => void;
  /** How long to wait for every node to register. */
  registerTimeoutMs?: number;
  /** Runs a dev chain too: the gateway settles epochs on it and every node is funded and staked. */
  chain?: { epochSeconds: number };
}

export interface LocalNetwork {
  gateway: RunningGateway;
  nodes: RunningNode[];
  baseUrl: string;
  apiKey: string;
  accountId: string;
  /** The dev chain, when `chain` was asked for. */
  chain?: LocalChain;
  close(deadlineMs?: number): Promise<void>;
}

const ACCOUNT_NAME = "gbt-up";

/** The local network's owner key (created once, 0600): `gbt job create --key-file <dir>/owner.key` signs for its nodes. */
async function localOwner(file: string): Promise<Address> {
  let key: string;
  try {
    key = (await readFile(file, "utf8")).trim();
  } catch {
    key = generatePrivateKey();
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, `${key}\n`, { mode: 0o600, flag: "wx" }).catch(async () => {
      key = (await readFile(file, "utf8")).trim();
    });
  }
  return privateKeyToAccount(key as `0x${string}`).address;
}

export async function startLocalNetwork(parameters: LocalNetworkParameters): Promise<LocalNetwork> {
  const { dir, logger } = parameters;
  const progress = parameters.onProgress ?? (() => {});
  if (!(Number.isInteger(parameters.nodes) && parameters.nodes >= 1 && parameters.nodes <= 16)) {
    throw new GbtError("USAGE", `--nodes must be 1–16, not ${parameters.nodes}.`);
  }
  const chain = parameters.chain
    ? await startLocalChain({
        gatewayDataDir: join(dir, "gateway"),
        epochSeconds: parameters.chain.epochSeconds,
      }).catch((error: unknown) => {
        // npm ships anvil for Linux x64 only: elsewhere the network still runs, settling in its ledger.
        if (!isGbtError(error, "NOT_FOUND")) throw error;
        progress(`no chain: ${error.message} ${error.hint ?? ""}`.trim());
        return undefined;
      })
    : undefined;
  if (chain)
    progress(`chain (anvil) on ${chain.chain.rpcUrl}, Settlement at ${chain.chain.deployment.settlement}`);
  const gateway = await startGateway({
    dataDir: join(dir, "gateway"),
    configFile: join(dir, "gateway.json"),
    logger: logger.child({ service: "gbt-gateway" }),
    port: parameters.port,
    ...(parameters.host !== undefined ? { host: parameters.host } : {}),
    // The local nodes listen on loopback: admitted here, refused by a gateway on defaults.
    config: (config) => ({
      ...config,
      allowPrivateNodes: true,
      routing: { ...config.routing, rampUpDays: 0 },
    }),
    ...(chain ? { settlement: chain.settlement } : {}),
  }).catch(async (error: unknown) => {
    await chain?.stop();
    throw error;
  });
  const nodes: RunningNode[] = [];
  const close = async (deadlineMs = 10_000) => {
    await Promise.all(nodes.map((node) => node.close(deadlineMs).catch(() => undefined)));
    await gateway.close(deadlineMs);
    await chain?.stop();
  };
  try {
    progress(`gateway listening on ${gateway.url}`);
    const hardware = await probeHardware({ dataDir: join(dir, "node-1", "data") });
    // One owner claims every node (an unclaimed node joins no pool): its key stays in the network's dir.
    const owner = await localOwner(join(dir, "owner.key"));
    for (let i = 1; i <= parameters.nodes; i++) {
      const paths = resolvePaths({ GBT_HOME: join(dir, `node-${i}`) });
      await setupNode({
        paths,
        owners: [owner],
        backend: "embedded",
        probeHardware: async () => hardware,
        detectBackends: async () => [],
      });
      const node = await startServe({
        paths,
        logger: logger.child({ service: "gbt-node", node: i }),
        port: 0,
        threads: parameters.threads,
        ...(parameters.capacity !== undefined ? { capacity: parameters.capacity } : {}),
        gatewayUrl: gateway.url,
      });
      nodes.push(node);
      progress(`node ${i} serving on ${node.server.url} (${node.models.map((m) => m.id).join(", ")})`);
      if (chain) await chain.joinNode(paths, gateway.url);
    }
    const until = Date.now() + (parameters.registerTimeoutMs ?? 30_000);
    while (gateway.pool.size < parameters.nodes) {
      if (Date.now() > until) {
        throw new GbtError(
          "GATEWAY_UNREACHABLE",
          `Only ${gateway.pool.size} of ${parameters.nodes} nodes registered with the gateway in time.`,
          { hint: "Run again with --log-level info to see the nodes' link errors." },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    progress(`${parameters.nodes} node${parameters.nodes > 1 ? "s" : ""} registered`);
    const existing = gateway.accounts.listAccounts().find((account) => account.name === ACCOUNT_NAME);
    const account = existing ?? gateway.accounts.createAccount({ name: ACCOUNT_NAME });
    const key = gateway.accounts.createApiKey(
      account.id,
      `up ${new Date().toISOString().slice(0, 19).replace("T", " ").replaceAll(":", ".")}`,
    );
    return {
      gateway,
      nodes,
      baseUrl: `${gateway.url}/v1`,
      apiKey: key.key,
      accountId: account.id,
      ...(chain ? { chain } : {}),
      close,
    };
  } catch (error) {
    await close(1000).catch(() => undefined);
    throw error;
  }
}

/** Sends one streamed request through the network; returns the text and how long it took. */
export async function sendFirstRequest(
  network: LocalNetwork,
  model: string,
): Promise<{ text: string; tokens: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${network.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${network.apiKey}` },
    body: JSON.stringify({
      model,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 24,
      messages: [{ role: "user", content: "Hello from gbt up" }],
    }),
  });
  if (!response.ok || response.body === null) {
    throw new GbtError(
      "GATEWAY_UNREACHABLE",
      `The first request through the gateway failed: HTTP ${response.status} ${await response.text()}`,
    );
  }
  let text = "";
  let tokens = 0;
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const data = JSON.parse(event.slice(6)) as {
        choices?: { delta?: { content?: string } }[];
        usage?: { completion_tokens: number };
        error?: { message: string };
      };
      if (data.error)
        throw new GbtError(
          "GATEWAY_UNREACHABLE",
          `The first request failed mid-stream: ${data.error.message}`,
        );
      text += data.choices?.[0]?.delta?.content ?? "";
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  return { text, tokens, ms: performance.now() - started };
}
