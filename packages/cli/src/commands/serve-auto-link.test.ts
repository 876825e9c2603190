/**
 * `link.mode: auto` (real processes): a node whose public URL the gateway cannot reach is probed
 * at registration, refused, and joins over its outbound link instead; one whose URL answers stays
 * direct. The unreachable URL is never registered.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { type Address, isAddressEqual } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, TEST_OWNER, tempHome } from "../testing/run-cli.js";
import { type GbtProcess, startGbtProcess } from "../testing/serve-process.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe("link.mode auto: the gateway probes a public URL, and an unreachable one means the outbound link", () => {
  let gatewayHome: string;
  let gateway: GbtProcess;
  let gatewayUrl: string;
  let adminToken: string;
  const nodes: GbtProcess[] = [];

  const viewOf = async (address: Address) => {
    const response = await fetch(`${gatewayUrl}/v1/gateway/nodes`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const data = ((await response.json()) as { data: { nodeAddress: string; url: string; status: string }[] })
      .data;
    return data.find((n) => isAddressEqual(n.nodeAddress as Address, address));
  };
  const startNode = async (args: string[]) => {
    const home = await tempHome("gbt-auto-node-");
    expect((await runCli(["setup", "--yes", "--owner", TEST_OWNER], { GBT_HOME: home })).exitCode).toBe(0);
    const address = (
      JSON.parse(readFileSync(join(home, "config", "config.json"), "utf8")) as { node: { address: Address } }
    ).node.address;
    const node = await startGbtProcess(
      ["serve", "--json", "--log-level", "info", "--threads", "1", "--gateway", gatewayUrl, ...args],
      { GBT_HOME: home },
    );
    nodes.push(node);
    return { node, address };
  };
  const until = async (check: () => Promise<boolean>, what: string, node: GbtProcess) => {
    const end = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${node.stderr().slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  beforeAll(async () => {
    gatewayHome = await tempHome("gbt-auto-gw-");
    await mkdir(join(gatewayHome, "config"), { recursive: true });
    // Loopback URLs pass the URL policy here: only the probe can tell the gateway it cannot reach one.
    await writeFile(join(gatewayHome, "config", "gateway.json"), JSON.stringify({ allowPrivateNodes: true }));
    gateway = await startGbtProcess(["gateway", "serve", "--port", "0", "--json", "--log-level", "warn"], {
      GBT_HOME: gatewayHome,
    });
    gatewayUrl = String(gateway.first.url);
    adminToken = readFileSync(join(gatewayHome, "data", "gateway", "admin-token"), "utf8").trim();
  }, 60_000);

  afterAll(async () => {
    for (const node of nodes) await node.stop("SIGKILL");
    await gateway?.stop("SIGKILL");
  });

  it("a public URL nobody answers on: refused by the probe, joined over the outbound link", async () => {
    const closed = await freePort();
    const { node, address } = await startNode(["--port", "0", "--public-url", `http://127.0.0.1:${closed}`]);
    expect(node.first).toMatchObject({ reach: "direct" });
    await until(async () => (await viewOf(address))?.status === "active", "the registration", node);
    expect((await viewOf(address))?.url).toBe("http://node.gbt-link");
    expect(node.stderr()).toContain("joining over an outbound link instead");
  });

  it("a public URL that answers stays direct", async () => {
    const port = await freePort();
    const { node, address } = await startNode([
      "--port",
      String(port),
      "--public-url",
      `http://127.0.0.1:${port}`,
    ]);
    await until(async () => (await viewOf(address))?.status === "active", "the registration", node);
    expect((await viewOf(address))?.url).toBe(`http://127.0.0.1:${port}`);
    expect(node.stderr()).not.toContain("joining over an outbound link instead");
  });
});
